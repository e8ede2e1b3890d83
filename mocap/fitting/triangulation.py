"""Confidence-weighted DLT triangulation of keypoints with per-view outlier rejection.

Hand-written rather than aniposelib's ``triangulate_ransac`` because that loops over points in Python;
this solves all frames and keypoints at once as batched 4x4 eigenproblems.
"""

from __future__ import annotations

import itertools

import numpy as np

from mocap.cameras import CameraRig, undistort_pixels


def normalized_coordinates(rig: CameraRig, uv: np.ndarray) -> np.ndarray:
    """``(F, V, K, 2)`` pixels (NaN allowed) -> undistorted normalised image coordinates, NaN kept."""
    out = np.full(uv.shape, np.nan)
    for v, cam in enumerate(rig):
        pts = uv[:, v].reshape(-1, 2)
        ok = np.isfinite(pts).all(-1)
        flat = np.full(pts.shape, np.nan)
        if ok.any():
            flat[ok] = undistort_pixels(pts[ok], cam.K, cam.dist)
        out[:, v] = flat.reshape(uv[:, v].shape)
    return out


def _dlt(xy: np.ndarray, w: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``xy`` (N, V, 2) normalised coordinates, ``w`` (N, V) weights, ``P`` (V, 3, 4) -> (N, 3).

    Minimises the weighted algebraic error: smallest eigenvector of ``A^T A`` with each view's two rows
    scaled by its weight.
    """
    xy = np.nan_to_num(xy)
    rows = np.stack([xy[..., 0:1] * P[:, 2] - P[:, 0], xy[..., 1:2] * P[:, 2] - P[:, 1]], -2)  # (N, V, 2, 4)
    A = (rows * w[..., None, None]).reshape(len(xy), -1, 4)
    _, vecs = np.linalg.eigh(A.transpose(0, 2, 1) @ A)
    X = vecs[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return X[:, :3] / X[:, 3:]


def depth_errors(rig: CameraRig, X: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reprojection errors ``(N, V)`` of points ``X`` ``(N, 3)`` against normalised coordinates ``xy``
    ``(N, V, 2)``, in metres at the point's depth (resolution-independent), and whether each point is in
    front of each camera ``(N, V)``."""
    Xc = np.einsum("vij,nj->nvi", rig.R, X) + rig.t  # (N, V, 3) camera frames
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.norm(Xc[..., :2] / Xc[..., 2:] - xy, axis=-1) * Xc[..., 2], Xc[..., 2] > 0


def triangulate(rig: CameraRig, uv: np.ndarray, conf: np.ndarray, min_views: int = 2,
                max_error: float = 0.05, consensus: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate keypoints seen by at least ``min_views`` views, dropping the worst view while it disagrees.

    Args:
        uv: ``(F, V, K, 2)`` pixels (NaN where missing).
        conf: ``(F, V, K)`` weights, 0 where missing.
        max_error: largest accepted reprojection error of a view, in metres at the point's depth
            (a pixel error times depth / focal length), so the test does not depend on resolution.
        consensus: start from the views that agree with the best pair of views (`_consensus`) rather than
            from all of them: more outliers found, twice the CPU.

    Returns:
        ``X`` ``(F, K, 3)`` world points (NaN where fewer than ``min_views`` consistent views remain) and
        ``used`` ``(F, V, K)`` the views kept for each point.
    """
    return triangulate_normalized(rig, normalized_coordinates(rig, uv), conf, min_views, max_error,
                                  consensus=consensus)


def triangulate_normalized(rig: CameraRig, xy: np.ndarray, conf: np.ndarray, min_views: int = 2,
                           max_error: float = 0.05, chunk: int = 1024,
                           consensus: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`triangulate` from undistorted normalised coordinates ``(F, V, K, 2)`` (`normalized_coordinates`).

    ``chunk`` frames at a time: each point is solved on its own, and the ``(N, V, 2, 4)`` systems of a long take
    at once would hold several hundred MB (18,000 frames x 33 keypoints x 4 views)."""
    F, V, K = conf.shape
    X, used = np.full((F, K, 3), np.nan), np.zeros((F, V, K), bool)
    for s in range(0, F, chunk):
        n = min(chunk, F - s)
        x, u = _triangulate_points(rig, xy[s:s + n].transpose(0, 2, 1, 3).reshape(n * K, V, 2),
                                   conf[s:s + n].transpose(0, 2, 1).reshape(n * K, V).astype(np.float64),
                                   min_views, max_error, consensus)
        X[s:s + n], used[s:s + n] = x.reshape(n, K, 3), u.reshape(n, K, V).transpose(0, 2, 1)
    return X, used


def _triangulate_points(rig: CameraRig, xy: np.ndarray, w: np.ndarray, min_views: int, max_error: float,
                        consensus: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``xy`` ``(N, V, 2)``, weights ``w`` ``(N, V)`` -> points ``(N, 3)`` and the views kept ``(N, V)``."""
    V = xy.shape[1]
    used = (w > 0) & np.isfinite(xy).all(-1)
    P = np.concatenate([rig.R, rig.t[:, :, None]], 2)
    if consensus:
        used = _consensus(rig, xy, w, used, P, max_error)
    X = np.full((len(xy), 3), np.nan)
    for _ in range(V + 1):  # each pass drops at most one view per point
        enough = used.sum(1) >= min_views
        X[:] = np.nan
        if not enough.any():
            break
        X[enough] = _dlt(xy[enough], w[enough] * used[enough], P)
        err, in_front = depth_errors(rig, X, xy)
        err = np.where(used & in_front, err, np.where(used, np.inf, -1.0))
        worst = np.argmax(err, 1)
        bad = enough & (err[np.arange(len(err)), worst] > max_error)
        if not bad.any():
            break
        # With only min_views views left there is no majority to tell which is wrong: drop the point.
        drop_all = bad & (used.sum(1) <= min_views)
        used[bad, worst[bad]] = False
        used[drop_all] = False
    X[used.sum(1) < min_views] = np.nan
    return X, used


def _consensus(rig: CameraRig, xy: np.ndarray, w: np.ndarray, used: np.ndarray, P: np.ndarray,
               max_error: float) -> np.ndarray:
    """``(N, V)`` the views of ``used`` within ``max_error`` of the point that the pair of views most others
    agree with triangulates (ties: the smaller error over the agreeing views); ``used`` where no pair agrees.

    Dropping the worst view of a DLT over all views misses an outlier that drags the point towards itself, so
    that a good view looks worst (on the synthetic long take 1 in 4 of its gross outliers stayed, and a good view
    went instead, 3,912 among 4-view points); a pair that includes no outlier cannot be dragged. Where every
    view agrees the best pair's agreeing views are all of them: the same point as before."""
    best, score = used.copy(), np.full(len(xy), -1.0)
    for a, b in itertools.combinations(range(xy.shape[1]), 2):
        pair = np.flatnonzero(used[:, a] & used[:, b])
        if len(pair) == 0:
            continue
        X = _dlt(xy[pair][:, [a, b]], w[pair][:, [a, b]], P[[a, b]])
        err, in_front = depth_errors(rig, X, xy[pair])
        with np.errstate(invalid="ignore"):
            agree = used[pair] & in_front & (err <= max_error)
        # count first; the fraction (below 1) prefers the pair whose agreeing views agree best
        s = np.where(agree[:, a] & agree[:, b],
                     agree.sum(1) - np.where(agree, err, 0).sum(1) / (max_error * (xy.shape[1] + 1)), -1.0)
        better = s > score[pair]
        best[pair[better]], score[pair[better]] = agree[better], s[better]
    return best
