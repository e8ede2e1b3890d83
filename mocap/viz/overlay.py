"""The fitted body drawn over the footage: per-view MP4s and a grid of all views.

Each frame shows the body mesh (flat-shaded or wireframe) projected through the session's calibration,
the detector's keypoints (green circles) and the same keypoints on the fitted body (magenta crosses), joined
by a thin line: a long line is where the fit and the detector disagree.

The mesh is drawn by the painter's algorithm (faces sorted far to near, filled with ``cv2.fillConvexPoly``)
on a mesh decimated by vertex clustering: a z-buffer rasteriser would be exact but slower in numpy, and at
video resolution the decimated surface (a few thousand faces) is indistinguishable. Pixels are as in
:mod:`mocap.cameras` ((0, 0) = centre of the top-left pixel); images are BGR uint8 (H, W, 3).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from mocap.cameras import Camera, project, world_to_camera
from mocap.errors import InputDataError
from mocap.io.atomic import atomic_path

DETECTED_BGR = (60, 220, 60)
FITTED_BGR = (230, 60, 230)
MESH_BGR = np.array((235, 190, 130), dtype=np.float64)  # light blue
_SHIFT = 4  # sub-pixel bits for OpenCV drawing: vertices at 1/16 px


def decimate_faces(vertices: np.ndarray, faces: np.ndarray, cell: float = 0.025) -> np.ndarray:
    """Faces ``(M', 3)`` of a coarser mesh over a subset of the original vertices (vertex clustering).

    Vertices of ``vertices`` (V, 3), best a rest pose, falling in one ``cell``-metre cube are merged into the
    one nearest the cube's mean; faces that collapse or repeat are dropped. The result indexes the original
    vertex array, so any posed copy of the mesh draws with it. Faces keep their orientation.
    """
    keys = np.floor(vertices / cell).astype(np.int64)
    _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)
    centroid = np.zeros((len(counts), 3))
    np.add.at(centroid, cluster, vertices)
    centroid /= counts[:, None]
    d = np.linalg.norm(vertices - centroid[cluster], axis=1)
    order = np.lexsort((d, cluster))  # per cluster, nearest vertex first
    rep = np.empty(len(counts), dtype=np.int64)
    first = np.ones(len(order), dtype=bool)
    first[1:] = cluster[order[1:]] != cluster[order[:-1]]
    rep[cluster[order[first]]] = order[first]
    f = rep[cluster[faces]]
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[keep]
    _, unique = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return f[np.sort(unique)]


def outward_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` wound so their normals point out of the closed-ish mesh (positive signed volume)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum()
    return faces if volume >= 0 else faces[:, ::-1].copy()


def _fixed(uv: np.ndarray) -> np.ndarray:
    return np.round(uv * (1 << _SHIFT)).astype(np.int32)


def draw_mesh(image: np.ndarray, camera: Camera, vertices: np.ndarray, faces: np.ndarray, style: str = "shaded",
              alpha: float = 0.6) -> np.ndarray:
    """Draw the mesh ``vertices`` (V, 3) world, ``faces`` (M, 3) outward-wound, over ``image`` in place.

    ``shaded``: front faces filled far to near, lit from the camera, blended with ``alpha``. ``wireframe``: the
    edges of front faces. Faces with a vertex behind the camera are skipped.
    """
    if style not in ("shaded", "wireframe"):
        raise InputDataError(f"unknown overlay style {style!r}; use shaded or wireframe")
    Xc = world_to_camera(vertices.astype(np.float64), camera.R, camera.t)
    uv = project(vertices.astype(np.float64), camera.K, camera.dist, camera.R, camera.t)
    tri = Xc[faces]  # (M, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centre = tri.mean(1)
    facing = -np.einsum("ij,ij->i", normal, centre)  # > 0: the face looks at the camera
    ok = (tri[..., 2] > 1e-3).all(1) & (facing > 0) & np.isfinite(uv[faces]).all((1, 2))
    if not ok.any():
        return image
    faces, normal, centre, facing = faces[ok], normal[ok], centre[ok], facing[ok]
    pts = _fixed(uv[faces])  # (M', 3, 2)
    if style == "wireframe":
        import cv2

        cv2.polylines(image, list(pts), True, tuple(int(c) for c in MESH_BGR), 1, cv2.LINE_AA, _SHIFT)
        return image
    import cv2

    # Lambert with a light at the camera: cosine between the face normal and the ray to the face.
    cos = facing / (np.linalg.norm(normal, axis=1) * np.linalg.norm(centre, axis=1) + 1e-12)
    colours = (MESH_BGR[None] * (0.35 + 0.65 * np.clip(cos, 0, 1))[:, None]).astype(np.int32)
    layer = image.copy()
    mask = np.zeros(image.shape[:2], dtype=np.uint8)
    for i in np.argsort(-centre[:, 2]):  # far to near: nearer faces paint over farther ones
        cv2.fillConvexPoly(layer, pts[i], colours[i].tolist(), cv2.LINE_8, _SHIFT)
        cv2.fillConvexPoly(mask, pts[i], 255, cv2.LINE_8, _SHIFT)
    covered = mask > 0
    image[covered] = (alpha * layer[covered] + (1 - alpha) * image[covered]).astype(np.uint8)
    return image


def draw_keypoints(image: np.ndarray, detected: np.ndarray | None, fitted: np.ndarray | None,
                   min_confidence: float = 0.3, radius: int = 4) -> np.ndarray:
    """Detected keypoints (K, 3) x, y, confidence as green circles; fitted ones (K, 2) as magenta crosses,
    each joined to its detection. Keypoints below ``min_confidence`` or NaN are not drawn."""
    import cv2

    det_ok = np.zeros(0, dtype=bool)
    if detected is not None:
        det_ok = np.isfinite(detected).all(1) & (detected[:, 2] >= min_confidence)
    fit_ok = np.isfinite(fitted).all(1) if fitted is not None else np.zeros(0, dtype=bool)
    if detected is not None and fitted is not None:
        for k in np.flatnonzero(det_ok & fit_ok):
            cv2.line(image, tuple(_fixed(fitted[k, :2])), tuple(_fixed(detected[k, :2])), (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)
    for k in np.flatnonzero(det_ok):
        cv2.circle(image, tuple(_fixed(detected[k, :2])), radius << _SHIFT, DETECTED_BGR, 2, cv2.LINE_AA, _SHIFT)
    for k in np.flatnonzero(fit_ok):
        c = _fixed(fitted[k, :2])
        d = radius << _SHIFT
        for dx, dy in ((d, d), (d, -d)):
            cv2.line(image, (int(c[0] - dx), int(c[1] - dy)), (int(c[0] + dx), int(c[1] + dy)), FITTED_BGR, 2, cv2.LINE_AA, _SHIFT)
    return image


def draw_legend(image: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]], scale: float = 1.0) -> np.ndarray:
    """Coloured labels in a dark box at the top-left corner."""
    import cv2

    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, max(1, round(scale))
    h = int(22 * scale)
    width = max(cv2.getTextSize(t, font, fs, th)[0][0] for t, _ in lines) + int(16 * scale)
    x0, y0 = int(8 * scale), int(8 * scale)
    box = image[y0:y0 + h * len(lines) + int(8 * scale), x0:x0 + width]
    box[:] = (box * 0.35).astype(np.uint8)
    for i, (text, colour) in enumerate(lines):
        cv2.putText(image, text, (x0 + int(8 * scale), y0 + h * (i + 1) - int(4 * scale)), font, fs, colour, th, cv2.LINE_AA)
    return image


def render_overlay_frame(image: np.ndarray, camera: Camera, vertices: np.ndarray | None = None,
                         faces: np.ndarray | None = None, detected: np.ndarray | None = None,
                         fitted_points: np.ndarray | None = None, style: str = "shaded", alpha: float = 0.6,
                         min_confidence: float = 0.3, label: str | None = None, legend: bool = True) -> np.ndarray:
    """One overlay frame: a new image (``image`` is not modified).

    Args:
        image: (H, W, 3) BGR uint8 footage of ``camera``.
        vertices: (V, 3) world vertices of the fitted body, or None / NaN (no fit this frame).
        faces: (M, 3) faces to draw (decimated and outward-wound, see :func:`decimate_faces`).
        detected: (K, 3) detected keypoints (pixels, confidence) of this view, or None.
        fitted_points: (K, 3) world positions of the same keypoints on the fitted body, or None.
        label: text drawn at the bottom-left (camera and frame).
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    has_fit = vertices is not None and np.isfinite(vertices).all()
    if has_fit and faces is not None:
        draw_mesh(out, camera, vertices, faces, style, alpha)
    fitted_uv = None
    if fitted_points is not None and np.isfinite(fitted_points).all():
        fitted_uv = project(fitted_points.astype(np.float64), camera.K, camera.dist, camera.R, camera.t)
        fitted_uv[world_to_camera(fitted_points.astype(np.float64), camera.R, camera.t)[:, 2] <= 1e-3] = np.nan
    draw_keypoints(out, detected, fitted_uv, min_confidence, radius=max(3, round(out.shape[0] / 300)))
    scale = max(0.8, out.shape[0] / 720)
    if legend:
        lines = [("body mesh (fit)", tuple(int(c) for c in MESH_BGR)), ("detected keypoints", DETECTED_BGR),
                 ("fitted body keypoints", FITTED_BGR)]
        if not has_fit:
            lines.append(("no fit in this frame", (80, 80, 255)))
        draw_legend(out, lines, scale)
    if label:
        cv2.putText(out, label, (int(10 * scale), out.shape[0] - int(12 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6 * scale, (255, 255, 255), max(1, round(scale)), cv2.LINE_AA)
    return out


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the smallest near-square grid holding ``n`` views: 4 -> 2x2, 6 -> 2x3."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def tile(images: Sequence[np.ndarray], cell: tuple[int, int]) -> np.ndarray:
    """Images fitted (aspect kept, letterboxed) into ``cell`` (w, h) tiles of a near-square grid."""
    import cv2

    rows, cols = grid_shape(len(images))
    cw, ch = cell
    out = np.zeros((rows * ch, cols * cw, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        s = min(cw / img.shape[1], ch / img.shape[0])
        w, h = max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, cols)
        y, x = r * ch + (ch - h) // 2, c * cw + (cw - w) // 2
        out[y:y + h, x:x + w] = small
    return out


@dataclass(frozen=True)
class OverlayOutputs:
    views: dict[str, Path]  # camera -> MP4
    grid: Path
    frames: int


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)  # mp4v wants even sizes


@dataclass(frozen=True, eq=False)
class OverlayScene:
    """What the overlays of a session draw, for the frames ``frames`` (F',)."""

    session: object  # mocap.session.Session
    rig: object  # CameraRig
    cameras: tuple[str, ...]
    frames: np.ndarray  # (F',) frame indices
    faces: np.ndarray  # (M, 3) decimated, outward
    vertices: np.ndarray  # (F', V, 3) world; NaN for frames without a fit
    points: np.ndarray | None  # (F', K, 3) world keypoints of the fitted body, detector format
    detections: np.ndarray | None  # (F, V, K, 3) detected keypoints, all frames
    style: str

    def images(self) -> Iterator[tuple[int, list[np.ndarray]]]:
        """(frame index, per-view overlay images at footage resolution), frame by frame."""
        views = {v.camera: v for v in self.session.views}
        readers = {c: _frames_at(views[c].info.path, self.frames) for c in self.cameras}
        for n, f in enumerate(self.frames):
            out = []
            for v, c in enumerate(self.cameras):
                image = next(readers[c], None)
                if image is None:
                    raise InputDataError(f"{views[c].info.path}: ended before frame {f}")
                det = self.detections[f, v] if self.detections is not None else None
                pts = self.points[n] if self.points is not None else None
                out.append(render_overlay_frame(image, self.rig[c], self.vertices[n], self.faces, det, pts,
                                                self.style, label=f"{c}  frame {f}"))
            yield int(f), out


def load_scene(session_dir: str | os.PathLike, style: str = "shaded",
               frames: slice | Sequence[int] | None = None) -> OverlayScene:
    """Read the session's calibration, detections and fitted sequence, and pose the body at ``frames`` (a slice
    or indices; all by default)."""
    import torch

    from mocap.io.calibration_toml import load_rig
    from mocap.io.keypoints_h5 import read_keypoints
    from mocap.session import Session
    from mocap.viz.result import body_for_result, body_vertices, keypoints_world, load_result

    if style not in ("shaded", "wireframe"):
        raise InputDataError(f"unknown overlay style {style!r}; use shaded or wireframe")
    session = Session.load(session_dir)
    rig = load_rig(session.calibration_path)
    result = load_result(session.output("smpl"))
    body = body_for_result(result, session.config.body)
    cams = tuple(c for c in session.cameras if c in rig)
    if not cams:
        raise InputDataError(f"{session.calibration_path}: calibrates none of the cameras {', '.join(session.cameras)}")
    kp_path = session.output("keypoints")
    kp = read_keypoints(kp_path, cams) if kp_path.is_file() else None
    F = min(session.num_frames, result.num_frames)
    if frames is None or isinstance(frames, slice):
        idx = np.arange(F)[frames or slice(None)]
    else:
        idx = np.unique(np.asarray([f for f in frames if 0 <= f < F], dtype=np.int64))
    if len(idx) == 0:
        raise InputDataError(f"no frame to draw: the session has {session.num_frames} frames, the fit {result.num_frames}")
    with torch.no_grad():
        rest = body.forward(torch.zeros(1, 3, dtype=body.dtype), torch.zeros(1, 23, 3, dtype=body.dtype),
                            torch.as_tensor(result.betas, dtype=body.dtype)[None]).vertices[0].numpy()
    # Wireframes need larger faces than shading to stay readable.
    cell_m = 0.025 if style == "shaded" else 0.05
    faces = outward_faces(rest, decimate_faces(rest, np.asarray(body.faces, dtype=np.int64), cell_m))
    points = keypoints_world(body, result, kp.format, idx) if kp is not None else None
    return OverlayScene(session, rig, cams, idx, faces, body_vertices(body, result, idx), points,
                        kp.keypoints if kp is not None else None, style)


def write_overlays(session_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, style: str = "shaded",
                   frames: slice | Sequence[int] | None = None, scale: float = 0.5, grid_height: int = 1080,
                   progress: Callable[[int, int], None] | None = None) -> OverlayOutputs:
    """Write ``<out_dir>/<camera>.mp4`` per view and ``<out_dir>/grid.mp4`` (default ``output/overlay``).

    Reads the session's footage, ``calibration.toml``, ``output/keypoints2d.h5`` (optional) and
    ``output/smpl.npz``. ``scale`` resizes the per-view videos (1 = footage resolution); ``frames`` (a slice or
    indices) selects frames, all by default.
    """
    import cv2

    scene = load_scene(session_dir, style, frames)
    session, cams = scene.session, scene.cameras
    out_dir = Path(out_dir) if out_dir is not None else session.output_dir / "overlay"
    views = {v.camera: v for v in session.views}
    sizes = {c: (_even(views[c].info.width * scale), _even(views[c].info.height * scale)) for c in cams}
    rows, cols = grid_shape(len(cams))
    aspect = max(sizes[c][0] / sizes[c][1] for c in cams)
    cell = (_even(grid_height / rows * aspect), _even(grid_height / rows))
    paths = {c: out_dir / f"{c}.mp4" for c in cams}
    specs = {**{c: (paths[c], sizes[c]) for c in cams}, "grid": (out_dir / "grid.mp4", (cell[0] * cols, cell[1] * rows))}
    fps = session.fps or 30.0
    with _video_writers(specs, fps) as writers:
        for n, (f, images) in enumerate(scene.images()):
            tiles = [cv2.resize(img, sizes[c], interpolation=cv2.INTER_AREA) for c, img in zip(cams, images)]
            for c, img in zip(cams, tiles):
                writers[c].write(img)
            writers["grid"].write(tile(tiles, cell))
            if progress:
                progress(n + 1, len(scene.frames))
    return OverlayOutputs(paths, out_dir / "grid.mp4", len(scene.frames))


def _frames_at(path: Path, idx: np.ndarray):
    """Frames ``idx`` (increasing) of a video or image folder, read sequentially."""
    from mocap.io.video import read_frames

    wanted = iter(idx.tolist())
    target = next(wanted, None)
    for i, frame in enumerate(read_frames(path, int(idx[0]), int(idx[-1]) + 1), start=int(idx[0])):
        if i == target:
            yield frame
            target = next(wanted, None)
            if target is None:
                return


@contextlib.contextmanager
def _video_writers(specs: dict[str, tuple[Path, tuple[int, int]]], fps: float):
    """mp4v ``cv2.VideoWriter`` per key of ``specs`` (path, (w, h)); every file lands atomically on success."""
    import cv2

    with contextlib.ExitStack() as stack:
        writers = {}
        for key, (path, size) in specs.items():
            tmp = stack.enter_context(atomic_path(path))
            w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
            if not w.isOpened():
                raise InputDataError(f"{path}: OpenCV cannot write an mp4v video here")
            stack.callback(w.release)  # runs before the atomic rename registered above it
            writers[key] = w
        yield writers
