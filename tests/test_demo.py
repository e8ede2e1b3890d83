"""The demo's own computations (world alignment, summary), its graceful skips, and a tiny end-to-end run when
every stage is installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mocap.cameras import Camera, CameraRig
from mocap.demo import DemoResult, DemoSettings, Step, align_rig, run_demo, summary_markdown
from tests.viz_data import ring_rig


def _moved(rig: CameraRig, Q: np.ndarray, T: np.ndarray, s: float) -> CameraRig:
    """The same cameras described in another world frame: x' = s Q x + T."""
    out = []
    for c in rig:
        R = c.R @ Q.T
        out.append(Camera(c.name, c.K, c.dist, R, -R @ (s * Q @ c.center + T), c.image_size))
    return CameraRig(tuple(out))


def test_align_rig_undoes_a_similarity_of_the_world():
    truth = ring_rig(4)
    Q = Rotation.from_rotvec([0.3, -1.2, 0.5]).as_matrix()
    moved = _moved(truth, Q, np.array([2.0, -1.0, 0.5]), 1.7)
    aligned, centre, rot = align_rig(moved, truth)
    assert max(centre.values()) < 1e-9 and max(rot.values()) < 1e-6
    X = np.random.default_rng(0).uniform(-1, 1, (10, 3))
    for c in truth:
        np.testing.assert_allclose(aligned[c.name].project(X), c.project(X), atol=1e-6)


def test_align_rig_reports_a_displaced_camera():
    truth = ring_rig(4)
    cams = list(truth)
    c = cams[2]
    cams[2] = Camera(c.name, c.K, c.dist, c.R, c.t + np.array([0.0, 0.0, 0.04]), c.image_size)  # 4 cm along its axis
    _, centre, _ = align_rig(CameraRig(tuple(cams)), truth)
    assert 0.01 < centre[c.name] < 0.04


def test_summary_lists_steps_and_figures(tmp_path):
    res = DemoResult(tmp_path, [Step("real", "detect", "ok", 12.34, "rate 100 %", 20.0),
                                Step("real", "export FBX", "skipped", 0.0, "bpy", 0.5)],
                     {"real: leave-one-view-out 2D error (px)": {"cam01": 7.25}})
    md = summary_markdown(res)
    assert "| real | detect | ok | 12.3 | 20.0 | rate 100 % |" in md and "| cam01 | 7.25 |" in md
    assert "Total: 12 s wall, 20 s CPU" in md


def test_parallel_parts_report_back_from_their_processes(tmp_path):
    # Both parts stop at once (one camera is too few; no sample): what matters is that each part's steps come
    # back from its own process, in order, and that the summary names both.
    settings = DemoSettings(synth_cameras=1, overlays=False, real_sample=tmp_path / "absent", parallel=True)
    res = run_demo(tmp_path / "out", settings, log=print)
    assert [(s.part, s.name, s.status) for s in res.steps] == [("synthetic", "synthesise + render", "failed"),
                                                                ("real", "sample", "skipped")]
    assert "--cameras 1" in res.steps[0].detail and np.isfinite(res.steps[0].cpu_seconds)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "the parts ran side by side" in md and "synthetic" in md and "absent" in md


def test_missing_sample_is_skipped_not_fatal(tmp_path):
    lines = []
    res = run_demo(tmp_path / "out", DemoSettings(overlays=False, real_sample=tmp_path / "absent"), log=lines.append,
                   parts=("real",))
    assert [s.status for s in res.steps] == ["skipped"] and "absent" in res.steps[0].detail
    assert (tmp_path / "out" / "summary.md").is_file()


_STAGES = ("mocap.synth.session", "mocap.calib.calibrate", "mocap.detect.stage", "mocap.fitting.run", "mocap.eval.evaluate")


@pytest.mark.slow
@pytest.mark.skipif(not all(importlib.util.find_spec(m.rsplit(".", 1)[0]) and importlib.util.find_spec(m) for m in _STAGES),
                    reason="not every stage is installed yet")
def test_tiny_synthetic_demo_end_to_end(tmp_path):
    settings = DemoSettings(synth_cameras=2, synth_frames=10, synth_board_frames=30, shape_frames="0:10", overlays=False)
    res = run_demo(tmp_path, settings, log=print, parts=("synthetic",))
    status = {s.name: s.status for s in res.steps}
    for name in ("synthesise + render", "fit (mocap run)", "eval vs truth", "report"):
        assert status[name] == "ok", res.steps
    assert (tmp_path / "synthetic" / "output" / "smpl.npz").is_file()
    assert (tmp_path / "synthetic" / "output" / "report.html").is_file()
    acc = res.figures["synthetic: accuracy vs truth (mm)"]
    assert np.isfinite(acc["fit MPJPE"]) and acc["fit MPJPE"] < 300
