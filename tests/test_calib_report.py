"""The calibration report: per-camera statistics and the warnings that say what to do, on made-up errors."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.calib.calibrate import RigCalibration
from mocap.calib.report import MIN_FRAMES_SEEN, MIN_PAIR_FRAMES, assess
from mocap.cameras import Camera, CameraRig


def _calibration(errors: np.ndarray, pair_frames: np.ndarray) -> RigCalibration:
    C, M, N = errors.shape
    cams = tuple(Camera(f"cam{i + 1}", np.diag([1000.0, 1000.0, 1.0]), np.zeros(5), np.eye(3), [i, 0.0, 0.0], (640, 480))
                 for i in range(C))
    return RigCalibration(CameraRig(cams), (), np.arange(M), np.zeros((C, M, N, 2)), np.zeros((M, N, 3)), errors,
                          pair_frames, "test", 0)


def test_statistics_and_verdicts_match_the_errors():
    rng = np.random.default_rng(0)
    errors = np.abs(rng.normal(0, 0.3, (3, 40, 12)))
    errors[2] *= 3  # a worse camera
    errors[1, :5] = np.nan  # not seen in 5 frames
    errors[1, 5, :4] = np.nan  # a partly seen frame still counts
    pairs = np.full((3, 3), 35)
    report = assess(_calibration(errors, pairs))
    for c, st in enumerate(report.cameras):
        e = errors[c][~np.isnan(errors[c])]
        assert st.corners == e.size and st.mean_px == pytest.approx(e.mean())
        assert st.p95_px == pytest.approx(np.percentile(e, 95))
    assert [s.frames for s in report.cameras] == [40, 35, 40]
    assert [s.verdict for s in report.cameras] == ["good", "good", "fair"]
    assert report.mean_px == pytest.approx(np.nanmean(errors))
    # cam3 (3x the others' error) is flagged as the outlier, and only it
    assert [w.split(":")[0] for w in report.warnings] == ["camera cam3 is an outlier"]


def test_rarely_seen_camera_and_weak_pairs_are_warned_about():
    errors = np.full((4, 30, 12), 0.2)
    errors[3, MIN_FRAMES_SEEN - 3:] = np.nan  # cam4 saw the board in too few frames
    pairs = np.full((4, 4), 25)
    pairs[3, :3] = pairs[:3, 3] = [MIN_PAIR_FRAMES - 1, 2, 0]  # and shares few with the others
    report = assess(_calibration(errors, pairs))
    text = "\n".join(report.warnings)
    assert f"camera cam4 saw the board in {MIN_FRAMES_SEEN - 3} frames; film the board closer to cam4" in text
    assert f"camera cam4 shares at most {MIN_PAIR_FRAMES - 1} board frames with another camera (cam1)" in text
    assert "cam1" not in text.replace("(cam1)", "") and len(report.warnings) == 2


def test_poor_camera_gets_advice_and_metadata_lists_every_camera():
    errors = np.full((2, 20, 8), 1.5)
    report = assess(_calibration(errors, np.full((2, 2), 20)))
    assert all(s.verdict == "poor" for s in report.cameras)
    assert sum("is high; refilm" in w for w in report.warnings) == 2
    meta = report.to_metadata()
    assert set(meta["cameras"]) == {"cam1", "cam2"} and meta["error"] == pytest.approx(1.5)
