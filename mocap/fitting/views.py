"""Choosing the N best views: most detections, spread widest around the subject."""

from __future__ import annotations

import numpy as np

from mocap.cameras import CameraRig


def _subject_center(rig: CameraRig) -> np.ndarray:
    """The point closest (least squares) to all optical axes: where the rig looks."""
    d = rig.R[:, 2, :]  # (V, 3) optical axes in the world
    C = rig.centers
    A = np.eye(3)[None] - d[:, :, None] * d[:, None, :]
    return np.linalg.lstsq(A.sum(0), (A @ C[..., None]).sum(0)[:, 0], rcond=None)[0]


def select_views(rig: CameraRig, keypoints: np.ndarray, n: int, min_confidence: float = 0.3) -> list[int]:
    """Indices of ``n`` views, greedily: start with the view detecting most keypoints, then repeatedly add
    the view maximising ``detections * (0.25 + angle to the nearest chosen view / pi)``.

    Args:
        keypoints: ``(F, V, K, 3)`` detections (x, y, confidence; NaN where missing).
    """
    V = len(rig)
    if n >= V:
        return list(range(V))
    conf = np.nan_to_num(keypoints[..., 2])
    detections = (conf >= min_confidence).mean((0, 2))  # (V,)
    dirs = rig.centers - _subject_center(rig)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    chosen = [int(np.argmax(detections))]
    while len(chosen) < n:
        angle = np.arccos(np.clip(dirs @ dirs[chosen].T, -1, 1)).min(1)  # (V,)
        score = detections * (0.25 + angle / np.pi)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return sorted(chosen)
