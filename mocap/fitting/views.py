"""Choosing the N best views: most detections, most consistent with the others (calibration), spread widest."""

from __future__ import annotations

import numpy as np

from mocap.cameras import CameraRig, world_to_camera


def _subject_center(rig: CameraRig) -> np.ndarray:
    """The point closest (least squares) to all optical axes: where the rig looks."""
    d = rig.R[:, 2, :]  # (V, 3) optical axes in the world
    C = rig.centers
    A = np.eye(3)[None] - d[:, :, None] * d[:, None, :]
    return np.linalg.lstsq(A.sum(0), (A @ C[..., None]).sum(0)[:, 0], rcond=None)[0]


def view_disagreement(rig: CameraRig, keypoints: np.ndarray, min_confidence: float = 0.3) -> np.ndarray:
    """``(V,)`` each view's median distance (metres at the point) between its detections and the keypoints
    triangulated from all views; NaN for a view with none. A camera whose calibration is off disagrees with
    the others everywhere, so this measures calibration error on the session itself (the calibration file
    stores no per-camera error)."""
    from mocap.fitting.triangulation import triangulate

    conf = np.nan_to_num(keypoints[..., 2])
    ok = (conf >= min_confidence) & np.isfinite(keypoints[..., :2]).all(-1)
    uv = np.where(ok[..., None], keypoints[..., :2], np.nan)
    X, _ = triangulate(rig, uv, ok.astype(float), max_error=np.inf)  # (F, K, 3), no view dropped
    out = np.full(len(rig), np.nan)
    for v, cam in enumerate(rig):
        depth = world_to_camera(X.reshape(-1, 3), cam.R, cam.t)[:, 2]
        err = np.linalg.norm(cam.project(X.reshape(-1, 3)) - uv[:, v].reshape(-1, 2), axis=-1) * depth / cam.K[0, 0]
        err = err[np.isfinite(err)]
        if err.size:
            out[v] = np.median(err)
    return out


def select_views(rig: CameraRig, keypoints: np.ndarray, n: int, min_confidence: float = 0.3) -> list[int]:
    """Indices of ``n`` views, greedily: start with the best view by ``quality``, then repeatedly add the view
    maximising ``quality * (0.25 + angle to the nearest chosen view / pi)``, where ``quality`` is the share of
    confident detections divided by ``1 + disagreement / max(median disagreement, 5 mm)`` (:func:`view_disagreement`).

    Args:
        keypoints: ``(F, V, K, 3)`` detections (x, y, confidence; NaN where missing).
    """
    V = len(rig)
    if n >= V:
        return list(range(V))
    conf = np.nan_to_num(keypoints[..., 2])
    detections = (conf >= min_confidence).mean((0, 2))  # (V,)
    dis = view_disagreement(rig, keypoints, min_confidence)
    if np.isfinite(dis).any():
        # Disagreements below ~5 mm are keypoint noise, not calibration.
        detections = detections / (1 + np.nan_to_num(dis / max(np.nanmedian(dis), 0.005), nan=1.0))
    dirs = rig.centers - _subject_center(rig)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    chosen = [int(np.argmax(detections))]
    while len(chosen) < n:
        angle = np.arccos(np.clip(dirs @ dirs[chosen].T, -1, 1)).min(1)  # (V,)
        score = detections * (0.25 + angle / np.pi)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return sorted(chosen)
