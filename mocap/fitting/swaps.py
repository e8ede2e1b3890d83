"""Undo left/right swaps of a 2D detector, view by view, using the other calibrated views.

Single-view detectors (BlazePose above all) sometimes label a person's left side as right in one view,
typically when the person faces away from that camera. The views then disagree by the width of the
body. For each frame, relabelling one view's keypoints (left and right exchanged over the whole body,
over the legs only or over the arms only) is tried, and kept when it makes the views agree much better
(`find_swaps`). Needs three views or more: with two there is no majority to tell which one is swapped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mocap.cameras import CameraRig
from mocap.fitting.chunks import by_frames
from mocap.fitting.triangulation import depth_errors, normalized_coordinates, triangulate_normalized
from mocap.io.keypoints_h5 import Keypoints2D

#: Relabellings tried, by code in the returned array (0: kept as detected).
SWAPS = ("none", "all", "legs", "arms")
_LEG_WORDS = ("hip", "knee", "ankle", "heel", "foot", "toe")
_ARM_WORDS = ("shoulder", "elbow", "wrist", "pinky", "index", "thumb", "hand")


def _mirrored(name: str) -> str:
    return "_".join({"left": "right", "right": "left"}.get(word, word) for word in name.split("_"))


def swap_orders(names: tuple[str, ...]) -> np.ndarray:
    """``(len(SWAPS), K)`` keypoint orders: ``keypoints[..., order, :]`` applies that relabelling."""
    index = {n: i for i, n in enumerate(names)}
    mirror = np.array([index.get(_mirrored(n), i) for i, n in enumerate(names)])
    identity = np.arange(len(names))

    def only(words):
        return np.array([mirror[i] if any(w in n for w in words) else i for i, n in enumerate(names)])

    return np.stack([identity, mirror, only(_LEG_WORDS), only(_ARM_WORDS)])


def _errors(rig: CameraRig, xy: np.ndarray, conf: np.ndarray, cap: float, chunk: int = 1024) -> np.ndarray:
    """Each detection's disagreement with the other views, ``(F, K, V)`` metres at the point's depth, capped at
    ``cap`` (NaN where not detected): the keypoints are triangulated from all views (no view rejected), each
    point on its own. ``chunk`` frames at a time: a long take's ``(F * K, V, 3)`` camera-frame points at once
    are hundreds of MB."""
    return by_frames(lambda f: _frame_errors(rig, xy[f], conf[f], cap), len(conf), np.zeros((0,) + conf.shape[2:0:-1]),
                     chunk)


def _frame_errors(rig: CameraRig, xy: np.ndarray, conf: np.ndarray, cap: float) -> np.ndarray:
    F, V, K = conf.shape
    X, _ = triangulate_normalized(rig, xy, conf, max_error=np.inf)  # (F, K, 3)
    err, in_front = depth_errors(rig, X.reshape(F * K, 3), xy.transpose(0, 2, 1, 3).reshape(F * K, V, 2))
    counted = (conf.transpose(0, 2, 1).reshape(F * K, V) > 0) & np.isfinite(err)
    err = np.where(in_front, np.minimum(err, cap), cap)  # behind a camera: as bad as it gets
    return np.where(counted, err, np.nan).reshape(F, K, V)


def _inconsistency(err: np.ndarray) -> np.ndarray:
    """How badly the views of each frame disagree, ``(F,)``: the mean of the detections' `_errors`."""
    n = (len(err), err.shape[1] * err.shape[2])
    counted = ~np.isnan(err)
    return np.where(counted, err, 0.0).reshape(n).sum(1) / np.maximum(counted.reshape(n).sum(1), 1)


def find_swaps(keypoints: np.ndarray, rig: CameraRig, names: tuple[str, ...], min_confidence: float = 0.5,
               min_gain: float = 0.01, ratio: float = 0.7, cap: float = 0.3, chunk: int = 1024) -> np.ndarray:
    """The relabelling (index into `SWAPS`) that each view needs in each frame, ``(F, V)`` ints.

    Every frame's views are scored together (`_inconsistency`: mean reprojection error of the keypoints
    triangulated from all views, metres at the point). Each hypothesis "view v is relabelled by s" is
    scored the same way; the best is kept when it lowers the score below ``ratio`` times the current one
    and by at least ``min_gain`` metres. Rounds repeat on the frames that changed (a second swapped view),
    each view relabelled at most once per frame. Scoring all views together, rather than one view
    against the others, matters: with one view swapped, the others' triangulation is not clean either.
    When exactly half the views are swapped, both labellings are equally consistent (a mirrored body)
    and either may be chosen; telling them apart would need the body's handedness.

    Args:
        keypoints: ``(F, V, K, 3)`` pixels and confidence; NaN where missing.
        cap: errors are capped at this many metres so that one wild detection does not decide.
    """
    F, V = np.shape(keypoints)[:2]
    if V < 3:
        return np.zeros((F, V), dtype=np.int8)
    orders = swap_orders(tuple(names))
    # Frames are independent: a long take ``chunk`` frames at a time, whose float64 copies stay small.
    return by_frames(lambda f: _find_swaps(np.asarray(keypoints[f], dtype=np.float64), rig, orders, min_confidence,
                                           min_gain, ratio, cap), F, np.zeros((0, V), dtype=np.int8), chunk)


def _find_swaps(kp: np.ndarray, rig: CameraRig, orders: np.ndarray, min_confidence: float, min_gain: float,
                ratio: float, cap: float) -> np.ndarray:
    """`find_swaps` of ``kp`` ``(F, V, K, 3)``, with the relabellings ``orders`` (`swap_orders`)."""
    F, V, K, _ = kp.shape
    codes = np.zeros((F, V), dtype=np.int8)
    conf = np.where(np.isfinite(kp[..., 2]) & (kp[..., 2] >= min_confidence), kp[..., 2], 0.0)
    xy = normalized_coordinates(rig, kp[..., :2])
    frames = np.arange(F)
    for _ in range(V):
        err = _errors(rig, xy[frames], conf[frames], cap)
        current = _inconsistency(err)
        keep = current > min_gain  # the others cannot gain enough
        frames, current, err = frames[keep], current[keep], err[keep]
        best, best_view, best_swap = current.copy(), np.zeros(len(frames), int), np.zeros(len(frames), int)
        for v in range(V):
            for s in range(1, len(orders)):
                # Only the points the relabelling moves triangulate differently (each point is solved on its own)
                moved = np.flatnonzero(orders[s] != np.arange(K))
                xy_h, conf_h = xy[frames][:, :, moved], conf[frames][:, :, moved]  # fancy indexing: copies
                xy_h[:, v], conf_h[:, v] = xy[frames, v][:, orders[s, moved]], conf[frames, v][:, orders[s, moved]]
                err_h = err.copy()
                err_h[:, moved] = _errors(rig, xy_h, conf_h, cap)
                score = np.where(codes[frames, v] > 0, np.inf, _inconsistency(err_h))
                better = score < best
                best[better], best_view[better], best_swap[better] = score[better], v, s
        accept = (best < ratio * current) & (current - best > min_gain)
        if not accept.any():
            break
        for r in np.nonzero(accept)[0]:
            f, v, s = frames[r], best_view[r], best_swap[r]
            xy[f, v], conf[f, v] = xy[f, v, orders[s]], conf[f, v, orders[s]]
            codes[f, v] = s
        frames = frames[accept]
    return codes


def fix_swaps(kp: Keypoints2D, rig: CameraRig, **options) -> tuple[Keypoints2D, np.ndarray]:
    """``kp`` with each view's swapped frames relabelled (`find_swaps`), and the ``(F, V)`` codes found."""
    codes = find_swaps(kp.keypoints, rig, kp.names, **options)
    if not codes.any():
        return kp, codes
    orders = swap_orders(tuple(kp.names))
    fixed = kp.keypoints.copy()
    for f, v in zip(*np.nonzero(codes)):
        fixed[f, v] = kp.keypoints[f, v, orders[codes[f, v]]]
    return dataclasses.replace(kp, keypoints=fixed), codes


def swap_counts(codes: np.ndarray, cameras: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Frames relabelled per camera and kind, ``{camera: {"all": n, ...}}``, cameras without any left out."""
    return {cam: {SWAPS[s]: int(n) for s, n in enumerate(np.bincount(codes[:, v], minlength=len(SWAPS))) if s and n}
            for v, cam in enumerate(cameras) if codes[:, v].any()}
