"""What needs a look in a fit: a verdict per view, its worst frames, and the frames shown as stills.

From the fit's per-view reprojection errors ``reprojection_error_px`` (F, V) and, when given, the detection
rate per view. A frame of a view *needs a look* when its error exceeds ``max(2.5 x m, 8 px)``, ``m`` the
median error over all views and frames: on the real sample (median 17.7 px) that is 44 px, which flags
six frames of cam02 (its left-right confusion, 133 px at frame 81) and no frame of the other views. Verdicts:

- ``bad``: more than 20 % of the view's fitted frames need a look, or its median error exceeds the threshold,
  or it detected the person in fewer than half of the frames;
- ``check``: some frame needs a look, or the detection rate is under 90 %;
- ``good``: otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOOK_FACTOR = 2.5  # x the median error of all views
LOOK_FLOOR_PX = 8.0  # never flag frames below this: detector noise on sharp footage
BAD_SHARE = 0.2


@dataclass(frozen=True)
class ViewQuality:
    camera: str
    verdict: str  # good, check, bad
    median_px: float
    p95_px: float
    look: np.ndarray  # (L,) frames that need a look, increasing
    worst: list[tuple[int, float]]  # (frame, error px), worst first
    detection_rate: float | None
    reasons: list[str]


def frame_ranges(frames) -> str:
    """Frame indices (increasing) or an (F,) bool mask -> ``"3-5, 9"`` (at most five ranges shown)."""
    idx = np.asarray(frames)
    idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
    if not len(idx):
        return ""
    starts = idx[np.r_[True, np.diff(idx) > 1]]
    ends = idx[np.r_[np.diff(idx) > 1, True]]
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts.tolist(), ends.tolist())]
    return ", ".join(parts[:5]) + (", ..." if len(parts) > 5 else "")


def look_threshold(errors: np.ndarray) -> float:
    """The error (px) above which a frame of a view needs a look; ``errors`` (F, V), NaN where not fitted."""
    finite = errors[np.isfinite(errors)]
    return max(LOOK_FACTOR * float(np.median(finite)), LOOK_FLOOR_PX) if finite.size else LOOK_FLOOR_PX


def view_quality(errors: np.ndarray, cameras, detection_rates=None, worst: int = 3) -> list[ViewQuality]:
    """Per view of ``errors`` (F, V) px: the verdict, the frames that need a look and the ``worst`` frames."""
    limit = look_threshold(errors)
    out = []
    for v, cam in enumerate(cameras):
        e = errors[:, v]
        ok = np.isfinite(e)
        rate = None if detection_rates is None else detection_rates.get(cam)
        look = np.flatnonzero(ok & (e > limit))
        order = np.argsort(-np.where(ok, e, -np.inf))[:min(worst, int(ok.sum()))]
        med = float(np.median(e[ok])) if ok.any() else float("nan")
        reasons = []
        if ok.any() and (len(look) > BAD_SHARE * ok.sum() or med > limit):
            reasons.append(f"{len(look)} of {int(ok.sum())} frames over {limit:.0f} px")
        if rate is not None and rate < 0.5:
            reasons.append(f"person detected in {100 * rate:.0f} % of frames")
        verdict = "bad" if reasons else "good"
        if verdict == "good":
            if len(look):
                reasons.append(f"{len(look)} frames over {limit:.0f} px")
            if rate is not None and rate < 0.9:
                reasons.append(f"person detected in {100 * rate:.0f} % of frames")
            verdict = "check" if reasons else "good"
        out.append(ViewQuality(str(cam), verdict, med, float(np.percentile(e[ok], 95)) if ok.any() else float("nan"),
                               look, [(int(f), float(e[f])) for f in order], rate, reasons))
    return out


def still_frames(result, num_frames: int | None = None, count: int = 3) -> list[int]:
    """The frames the report shows: ``count`` spread over the sequence and each view's worst frame, increasing.

    ``result`` is a fitted :class:`~mocap.io.smpl_npz.SmplSequence`; ``num_frames`` caps it (the session's)."""
    from mocap.viz.plot import reprojection_errors

    n = result.num_frames if num_frames is None else min(result.num_frames, num_frames)
    spread = np.linspace(0, n - 1, count + 2).round().astype(int)[1:-1] if n > 2 else np.arange(n)
    frames = set(spread.tolist())
    rep = reprojection_errors(result)
    if rep is not None:
        errors = rep[0][:n]
        for v in range(errors.shape[1]):
            if np.isfinite(errors[:, v]).any():
                frames.add(int(np.nanargmax(errors[:, v])))
    return sorted(frames)
