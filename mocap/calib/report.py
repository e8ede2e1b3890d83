"""Judging a calibration: per-camera statistics, verdicts, and warnings that say what to do."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.calib.calibrate import RigCalibration

#: mean reprojection error (px) up to which a camera is "good", then "fair"; above: "poor"
GOOD_PX, FAIR_PX = 0.5, 1.0
MIN_FRAMES_SEEN = 15
MIN_PAIR_FRAMES = 10


@dataclass(frozen=True)
class CameraStats:
    camera: str
    frames: int  # frames in which the board was used
    corners: int  # corner detections used
    mean_px: float
    p95_px: float
    verdict: str  # good, fair, poor


@dataclass(frozen=True)
class CalibrationReport:
    cameras: tuple[CameraStats, ...]
    warnings: tuple[str, ...]
    mean_px: float

    def to_metadata(self) -> dict:
        return {"error": self.mean_px,
                "cameras": {c.camera: {"frames": c.frames, "mean_px": c.mean_px, "p95_px": c.p95_px, "verdict": c.verdict}
                            for c in self.cameras}}


def _verdict(mean_px: float) -> str:
    return "good" if mean_px <= GOOD_PX else "fair" if mean_px <= FAIR_PX else "poor"


def assess(cal: RigCalibration) -> CalibrationReport:
    names = cal.rig.names
    used = ~np.isnan(cal.errors)  # (C, M, N)
    stats, warnings = [], []
    for c, name in enumerate(names):
        e = cal.errors[c][used[c]]
        frames = int(used[c].any(-1).sum())
        mean, p95 = (float(e.mean()), float(np.percentile(e, 95))) if e.size else (float("nan"), float("nan"))
        stats.append(CameraStats(name, frames, int(e.size), mean, p95, _verdict(mean)))
        if frames < MIN_FRAMES_SEEN:
            warnings.append(f"camera {name} saw the board in {frames} frames; film the board closer to {name} "
                            f"and at more angles (aim for {MIN_FRAMES_SEEN}+)")
    means = np.array([s.mean_px for s in stats])
    for c, s in enumerate(stats):
        others = np.delete(means, c)
        if len(others) >= 2 and s.mean_px > max(2 * np.median(others), GOOD_PX):
            warnings.append(f"camera {s.camera} is an outlier: {s.mean_px:.2f} px against {np.median(others):.2f} px "
                            "for the others; check that it did not move or refocus during the calibration footage, "
                            "and that its video is in sync")
        if s.verdict == "poor":
            warnings.append(f"camera {s.camera}: mean reprojection error {s.mean_px:.2f} px is high; refilm with a flat, "
                            "rigid board, in focus, without motion blur")
    pairs = cal.pair_frames.copy()
    np.fill_diagonal(pairs, 0)
    for c, name in enumerate(names):
        if pairs[c].max() < MIN_PAIR_FRAMES:
            partner = names[int(np.argmax(pairs[c]))]
            warnings.append(f"camera {name} shares at most {int(pairs[c].max())} board frames with another camera "
                            f"({partner}); show the board to {name} and its neighbours at the same time")
    all_e = cal.errors[used]
    return CalibrationReport(tuple(stats), tuple(warnings), float(all_e.mean()) if all_e.size else float("nan"))
