"""How well 2D detections of several calibrated views agree: triangulate, reproject, measure in pixels.

A quality figure for a detector on real footage (no ground truth needed): keypoints seen by at least
two views are triangulated by linear least squares (DLT on undistorted, normalised coordinates) and
reprojected; the distance to the detection, in pixels, is small only when the views agree.
Written here rather than through aniposelib because it triangulates point by point in Python; this
solves all frames and keypoints as one batch of SVDs.
"""

from __future__ import annotations

import numpy as np

from mocap.cameras import CameraRig, undistort_pixels
from mocap.errors import InputDataError


def triangulate(keypoints: np.ndarray, rig: CameraRig, min_confidence: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(F, K, 3)`` (world) from keypoints ``(F, V, K, 3)`` of the rig's V cameras, and the views used ``(F, V, K)``.

    A view takes part where its confidence is at least ``min_confidence``; points with fewer than two
    such views are NaN.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    F, V, K, _ = kp.shape
    if V != len(rig):
        raise InputDataError(f"{V} views of keypoints, {len(rig)} cameras in the rig")
    used = (kp[..., 2] >= min_confidence) & np.isfinite(kp[..., :2]).all(-1)  # (F, V, K)
    A = np.zeros((F, K, V, 2, 4))
    for v, cam in enumerate(rig):
        xy = undistort_pixels(np.nan_to_num(kp[:, v, :, :2]).reshape(-1, 2), cam.K, cam.dist).reshape(F, K, 2)
        P = np.concatenate([cam.R, cam.t[:, None]], 1)  # (3, 4) normalised camera
        rows = xy[..., :, None] * P[2] - P[None, None, :2]  # (F, K, 2, 4)
        A[:, :, v] = np.where(used[:, v, :, None, None], rows, 0.0)
    _, _, vt = np.linalg.svd(A.reshape(F, K, 2 * V, 4))
    Xh = vt[..., -1, :]
    X = Xh[..., :3] / Xh[..., 3:]
    X[used.sum(1) < 2] = np.nan
    return X, used


def reprojection_errors(keypoints: np.ndarray, rig: CameraRig, min_confidence: float = 0.5) -> np.ndarray:
    """Pixel distance ``(F, V, K)`` between each detection used in triangulation and its reprojection (NaN elsewhere)."""
    X, used = triangulate(keypoints, rig, min_confidence)
    err = np.full(used.shape, np.nan)
    ok = np.isfinite(X).all(-1)  # (F, K)
    for v, cam in enumerate(rig):
        uv = cam.project(np.where(ok[..., None], X, 0.0))  # (F, K, 2)
        d = np.linalg.norm(uv - np.asarray(keypoints, dtype=np.float64)[:, v, :, :2], axis=-1)
        err[:, v] = np.where(used[:, v] & ok, d, np.nan)
    return err
