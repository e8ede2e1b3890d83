"""Multi-camera calibration from board detections.

1. Intrinsics per camera: ``cv2.calibrateCamera`` on up to ``max_intrinsic_frames`` detections (evenly spread),
   full K and ``(k1, k2, p1, p2)`` (k3 held at 0 unless asked: it overfits board footage); views more oblique
   than ``max_view_angle`` are dropped (corner detection degrades there).
2. First rig: board pose per camera and frame by PnP, chained over the camera graph and robustly averaged by
   aniposelib's ``get_initial_extrinsics``. Views up to ``max_view_angle`` count, or up to ``max_pose_angle``
   (70 degrees) when the tighter limit leaves cameras that share no frame: two cameras 90 degrees apart on a
   ring only ever see the board together at ~45 degrees each.
3. Bundle adjustment of everything at once, rigid-board model (`mocap.calib.bundle`); gross outliers dropped,
   then refined again. aniposelib's ``CameraGroup.bundle_adjust_iter`` is not used: it refines one focal
   length and k1 per camera over free 3D points, cannot reach the intrinsics accuracy we test for, and costs
   ~10 s of numba compilation per run.
4. World frame, y up, metres: the board at ``origin_frame`` (x along the board's columns, y its face normal,
   towards the cameras that see it, so a board lying on the floor makes the floor y = 0); without it, camera
   0's frame turned y up (x right, y up, z backwards).

Shapes: C cameras, M frames (seen by any camera), N board corners.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mocap.calib.board import Board, BoardDetections
from mocap.calib.bundle import refine
from mocap.cameras import Camera, CameraRig
from mocap.errors import CalibrationError

Progress = Callable[[int, int], None]

#: board frame -> world frame at the origin frame: world y is the board's -z (its face normal)
BOARD_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: camera 0 frame -> world frame without an origin frame
CAMERA_TO_WORLD = np.diag([1.0, -1.0, -1.0])

MIN_FRAMES = 6
MIN_LINK_FRAMES = 2


@dataclass(frozen=True)
class Intrinsics:
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (5,)
    rms: float  # pixels, OpenCV's reprojection RMS over the frames used
    frames_used: int


@dataclass(frozen=True)
class RigCalibration:
    """A calibrated rig and what is needed to judge it.

    ``frames`` (M,) frame indices seen by any camera; ``corners`` (C, M, N, 2) detections (NaN unseen);
    ``points`` (M, N, 3) board corners in the world frame at the fitted board poses; ``errors`` (C, M, N) pixel
    distance between each detected corner and its reprojection after bundle adjustment (NaN where not
    detected or dropped); ``pair_frames`` (C, C) frames in which both cameras saw the board usably.
    """

    rig: CameraRig
    intrinsics: tuple[Intrinsics, ...]
    frames: np.ndarray
    corners: np.ndarray
    points: np.ndarray
    errors: np.ndarray
    pair_frames: np.ndarray
    world: str
    outliers: int  # detections dropped as gross outliers


def _view_angles(object_points: np.ndarray, rvecs: np.ndarray, tvecs: np.ndarray) -> np.ndarray:
    """(M,) degrees between the board's normal and the ray from the camera to the board's centre."""
    from scipy.spatial.transform import Rotation

    normal = Rotation.from_rotvec(rvecs).as_matrix()[:, :, 2]
    centre = np.einsum("mij,j->mi", Rotation.from_rotvec(rvecs).as_matrix(), object_points.mean(0)) + tvecs
    cos = np.abs(np.sum(normal * centre, 1)) / np.linalg.norm(centre, axis=1)
    return np.degrees(np.arccos(np.clip(cos, 0, 1)))


def _too_few(det: BoardDetections, count: int) -> CalibrationError:
    return CalibrationError(f"camera {det.camera} saw the board usably in {count} frames of {det.source} "
                            f"(at least {MIN_FRAMES} needed); film the board closer to {det.camera}, facing it "
                            "more squarely, or check the board settings (type, rows, cols, dictionary)")


def calibrate_intrinsics(det: BoardDetections, board: Board, max_frames: int = 60, fix_k3: bool = True,
                         max_view_angle: float = 50.0) -> Intrinsics:
    """Intrinsics of one camera from its board detections; views more oblique than ``max_view_angle`` degrees
    (where corner detection degrades) are dropped after a first calibration and the camera recalibrated,
    unless fewer than ``MIN_FRAMES`` would remain."""
    import cv2

    if len(det) < MIN_FRAMES:
        raise _too_few(det, len(det))
    pick = np.unique(np.linspace(0, len(det) - 1, min(max_frames, len(det))).round().astype(int))
    obj, img = [], []
    for c in det.corners[pick]:
        ok = ~np.isnan(c[:, 0])
        obj.append(board.object_points[ok].astype(np.float32))
        img.append(c[ok].astype(np.float32).reshape(-1, 1, 2))
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-9)
    try:
        for attempt in range(2):
            rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, det.image_size, None, None, flags=flags,
                                                             criteria=criteria)
            keep = _view_angles(board.object_points, np.concatenate(rvecs, 1).T, np.concatenate(tvecs, 1).T) <= max_view_angle
            if attempt or keep.all() or keep.sum() < MIN_FRAMES:  # too few square views: oblique ones beat none
                break
            obj, img = [o for o, k in zip(obj, keep) if k], [i for i, k in zip(img, keep) if k]
    except cv2.error as e:
        raise CalibrationError(f"camera {det.camera}: OpenCV could not calibrate from {det.source} ({e.err}); "
                               "film the board at more varied angles") from None
    return Intrinsics(K, dist.ravel()[:5], float(rms), len(obj))


def _board_poses(det: BoardDetections, board: Board, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """(M, 6) board-to-camera rvec, tvec per detection (NaN where PnP fails) and (M,) view angles in degrees
    (inf where PnP fails)."""
    import cv2

    out = np.full((len(det), 6), np.nan)
    for i, c in enumerate(det.corners):
        ok = ~np.isnan(c[:, 0])
        good, rvec, tvec = cv2.solvePnP(board.object_points[ok], c[ok], intr.K, intr.dist)
        if good:
            out[i] = np.concatenate([rvec.ravel(), tvec.ravel()])
    valid = ~np.isnan(out[:, 0])
    angles = np.full(len(det), np.inf)
    angles[valid] = _view_angles(board.object_points, out[valid, :3], out[valid, 3:])
    return out, angles


def _components(pair_frames: np.ndarray) -> list[list[int]]:
    """Connected components of the camera graph: an edge where two cameras share ``MIN_LINK_FRAMES`` frames
    (aniposelib's pose averaging fails on a single one, and one frame would not be trustworthy anyway)."""
    from scipy.sparse.csgraph import connected_components

    n, labels = connected_components(pair_frames >= MIN_LINK_FRAMES, directed=False)
    return [list(np.flatnonzero(labels == k)) for k in range(n)]


def _rigid_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R, t minimising ``|R src + t - dst|`` over (N, 3) point pairs (Kabsch)."""
    cs, cd = src.mean(0), dst.mean(0)
    U, _, Vt = np.linalg.svd((dst - cd).T @ (src - cs))
    S = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ S @ Vt
    return R, cd - R @ cs


def _transform_rig(R: np.ndarray, t: np.ndarray, Q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cameras (C, 3, 3), (C, 3) re-expressed in the world ``X_new = Q X_old + s``."""
    R_new = R @ Q.T
    return R_new, t - np.einsum("cij,j->ci", R_new, s)


def calibrate_rig(detections: list[BoardDetections], board: Board, origin_frame: int | None = None,
                  max_intrinsic_frames: int = 60, fix_k3: bool = True, max_view_angle: float = 50.0,
                  max_pose_angle: float = 70.0, outlier_px: float = 3.0,
                  progress: Progress | None = None) -> RigCalibration:
    """Calibrate the cameras that filmed ``board``, frames synchronised across ``detections``; views more
    oblique than ``max_view_angle`` degrees are left out, unless the camera graph needs views up to
    ``max_pose_angle`` to be connected."""
    from aniposelib.utils import get_initial_extrinsics
    from scipy.spatial.transform import Rotation

    names = [d.camera for d in detections]
    C = len(detections)
    if C < 2:
        raise CalibrationError(f"calibration needs at least two cameras, got {C} ({', '.join(names)})")
    steps, done = C + 3, 0

    def step():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    intrinsics = []
    for d in detections:
        intrinsics.append(calibrate_intrinsics(d, board, max_intrinsic_frames, fix_k3, max_view_angle))
        step()

    frames = np.unique(np.concatenate([d.frames for d in detections]))
    M, N = len(frames), board.num_corners
    corners = np.full((C, M, N, 2), np.nan)
    rtvecs = np.full((C, M, 6), np.nan)
    angles = np.full((C, M), np.inf)
    for c, (d, intr) in enumerate(zip(detections, intrinsics)):
        rows = np.searchsorted(frames, d.frames)
        corners[c, rows] = d.corners
        rtvecs[c, rows], angles[c, rows] = _board_poses(d, board, intr)
    # oblique views only where the rig needs them to stay connected: their corners are less precise
    limit = max_view_angle
    strict = angles <= max_view_angle
    if len(_components((strict[:, None, :] & strict[None, :, :]).sum(-1))) > 1:
        limit = max_pose_angle
    rtvecs[angles > limit] = np.nan
    seen = ~np.isnan(rtvecs[..., 0])  # (C, M)
    used = seen.any(0)  # frames left with no usable view (all too oblique) carry nothing
    frames, corners, rtvecs, seen = frames[used], corners[:, used], rtvecs[:, used], seen[:, used]
    M = len(frames)
    corners[~seen] = np.nan
    pair_frames = (seen[:, None, :] & seen[None, :, :]).sum(-1)
    groups = _components(pair_frames)
    if len(groups) > 1:
        listed = "; ".join(", ".join(names[i] for i in g) for g in groups)
        raise CalibrationError(f"the cameras form {len(groups)} groups that never saw the board at the same time "
                               f"in {MIN_LINK_FRAMES}+ frames ({listed}); film the board where cameras of different "
                               "groups see it together")

    # first rig: board-pose chains over the camera graph, robustly averaged (aniposelib)
    rvecs, tvecs = get_initial_extrinsics(rtvecs, names)
    R = Rotation.from_rotvec(rvecs).as_matrix()
    t = np.asarray(tvecs, dtype=np.float64)
    # first board pose per frame: PnP in the camera that sees most of its corners
    best = np.argmax(np.where(seen, (~np.isnan(corners[..., 0])).sum(-1), -1), axis=0)  # (M,)
    rt = rtvecs[best, np.arange(M)]
    R_cb = Rotation.from_rotvec(rt[:, :3]).as_matrix()
    R_b = np.einsum("mji,mjk->mik", R[best], R_cb)
    t_b = np.einsum("mji,mj->mi", R[best], rt[:, 3:] - t[best])
    step()

    K0 = np.stack([i.K for i in intrinsics])
    d0 = np.stack([i.dist for i in intrinsics])
    ba = refine(K0, d0, R, t, R_b, t_b, board.object_points, corners, fix_k3=fix_k3)
    # drop gross outliers (a corner snapped to a wrong edge) and refine once more
    limit = max(outlier_px, 6 * float(np.median(ba.residuals)))
    outliers = int((ba.residuals > limit).sum())
    if outliers:
        obs = np.nonzero(~np.isnan(corners[..., 0]))
        bad = ba.residuals > limit
        corners[obs[0][bad], obs[1][bad], obs[2][bad]] = np.nan
        ba = refine(ba.K, ba.dist, ba.R, ba.t, ba.R_boards, ba.t_boards, board.object_points, corners, fix_k3=fix_k3)
    R, t, R_b, t_b = ba.R, ba.t, ba.R_boards, ba.t_boards
    errors = np.full((C, M, N), np.nan)
    errors[~np.isnan(corners[..., 0])] = ba.residuals  # same (c, m, n) order as np.nonzero in refine
    step()

    if origin_frame is None:
        Q, s = CAMERA_TO_WORLD @ R[0], CAMERA_TO_WORLD @ t[0]
        world = f"camera {names[0]} turned y-up (pass an origin frame to put the origin on the board)"
    else:
        row = int(np.searchsorted(frames, origin_frame))
        if row >= M or frames[row] != origin_frame:
            raise CalibrationError(f"origin frame {origin_frame}: no camera saw the board in that frame; "
                                   f"pick a frame where it lies still in view, e.g. {_frames_hint(frames, seen)}")
        Q, s = BOARD_TO_WORLD @ R_b[row].T, -BOARD_TO_WORLD @ R_b[row].T @ t_b[row]
        world = f"board at frame {origin_frame} (y up from its face, x along its columns)"
    R, t = _transform_rig(R, t, Q, s)
    R_b, t_b = Q @ R_b, t_b @ Q.T + s
    points = np.einsum("mij,nj->mni", R_b, board.object_points) + t_b[:, None]

    rig = CameraRig(tuple(Camera(n, k, dd, r, tt, d.image_size)
                          for n, k, dd, d, r, tt in zip(names, ba.K, ba.dist, detections, R, t)))
    step()
    return RigCalibration(rig, tuple(intrinsics), frames, corners, points, errors, pair_frames, world, outliers)


def _frames_hint(frames: np.ndarray, seen: np.ndarray) -> str:
    best = frames[np.argsort(-seen.sum(0), kind="stable")[:3]]
    return ", ".join(str(int(f)) for f in sorted(best))
