"""Several people end to end on tiny synthetic sessions: `mocap synth --people`, `mocap run` per person,
`mocap eval` with identities matched, and a view that follows someone else caught and flagged."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mocap.cli import app
from mocap.eval.people import count_switches, evaluate_people
from mocap.fitting.tracking import VIEW_REASONS
from mocap.io.calibration_toml import load_rig
from mocap.io.keypoints_h5 import Detections2D, read_detections, write_keypoints
from mocap.synth.people import hidden_by_others, offsets
from mocap.synth.session import SynthConfig, synthesize

runner = CliRunner()


def fit_result(error_px: np.ndarray, views_used: np.ndarray):
    """A fit of ``F`` frames and ``V`` views as `fit_without_far_views` reads it: a body at the origin and the
    views' errors ``(F, V)``."""
    from types import SimpleNamespace

    import torch

    from mocap.fitting.sequence import FitResult

    F, V = error_px.shape
    return FitResult(SimpleNamespace(transl=torch.zeros(F, 3, dtype=torch.float64)), torch.zeros(10), error_px,
                     views_used, np.zeros(F, np.uint8), tuple(f"cam{v}" for v in range(V)), 30.0, False)
FRAMES = 24


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("people") / "two"
    synthesize(root, SynthConfig(cameras=4, frames=FRAMES, people=2, seed=1))
    return root


def test_synth_people_truth_matches_the_detections(two):
    det = read_detections(two / "output" / "keypoints2d.h5")
    gt = np.load(two / "ground_truth.npz")
    assert int(gt["people"]) == 2 and det.num_slots == 2
    rig = load_rig(two / "calibration.toml").subset(det.cameras)
    slot_person = gt["detection_person"]  # (F, V, P)
    for k in range(2):
        truth = np.load(two / "ground_truth" / f"{k}.npz")
        uv = np.stack([cam.project(truth["keypoints3d"].reshape(-1, 3)).reshape(FRAMES, -1, 2) for cam in rig], 1)
        mine = slot_person == k
        kp = det.keypoints[mine]  # (n, K, 3)
        clean = ~truth["keypoint_outlier"][mine.any(-1)] & ~truth["keypoint_occluded"][mine.any(-1)]
        err = np.linalg.norm(kp[..., :2] - uv[mine.any(-1)], axis=-1)
        assert np.nanmedian(np.where(clean, err, np.nan)) < 6  # 3 px noise
        hidden = truth["keypoint_hidden"]  # dropped because the other person stood in front
        f, v, j = np.nonzero(hidden & mine.any(-1)[..., None])
        slots = np.argmax(mine, -1)[f, v]
        assert np.isnan(det.keypoints[f, v, slots, j]).all()
    np.testing.assert_allclose(np.load(two / "ground_truth" / "0.npz")["poses"], gt["poses"])


def test_hidden_by_others_only_hides_the_person_behind():
    from mocap.cameras import Camera, look_at

    R, t = look_at(np.array([0.0, 1.0, 4.0]), np.array([0.0, 1.0, 0.0]))
    cam = Camera("c", [[1000, 0, 960], [0, 1000, 540], [0, 0, 1]], np.zeros(5), R, t, (1920, 1080))
    from mocap.cameras import CameraRig

    rig = CameraRig((cam,))
    # Two stick people on the camera's axis, 1 m apart in depth: joints along a vertical line.
    joints = np.zeros((2, 1, 24, 3))
    joints[..., 1] = np.linspace(0.1, 1.7, 24)
    joints[1, ..., 2] = -1.0  # farther from the camera at z = 4
    keypoints = joints[:, :, :10] + [0.02, 0, 0]
    hidden = hidden_by_others(rig, keypoints, joints)
    assert hidden[1].all() and not hidden[0].any()
    joints[1, ..., 0] = 1.0  # stepped aside: nothing hidden
    assert not hidden_by_others(rig, joints[:, :, :10], joints).any()
    assert offsets(1).tolist() == [[0.0, 0.0, 0.0]]


def test_count_switches():
    d = np.full((4, 2, 1), np.nan)
    d[:, 0, 0] = [0.1, 0.1, 2.0, 2.0]
    d[:, 1, 0] = [2.0, 2.0, 0.1, 0.1]  # true person 0 taken over by fitted person 1 at frame 2
    assert count_switches(d, 0.5).tolist() == [1]
    assert count_switches(d[:2], 0.5).tolist() == [0]


def test_run_fits_every_person_and_eval_matches_them(two):
    result = runner.invoke(app, ["run", str(two)])
    assert result.exit_code == 0, result.output
    assert "2 people" in result.output
    main = np.load(two / "output" / "smpl.npz")
    for k in range(2):
        z = np.load(two / "output" / "people" / str(k) / "smpl.npz")
        assert int(z["person"]) == k and z["view_reasons"].shape == (FRAMES, 4)
        assert json.loads(str(z["view_reason_names"]))[0] == "used"
    np.testing.assert_array_equal(main["poses"], np.load(two / "output" / "people" / "0" / "smpl.npz")["poses"])
    m = evaluate_people(two / "output" / "people", two / "ground_truth")
    assert sorted(m.pairs) == ["0", "1"] and sorted(m.pairs.values()) == ["0", "1"]
    assert sum(m.switches.values()) == 0 and not m.unmatched_fit and not m.unmatched_truth
    for t in m.pairs:
        assert m.metrics[t].mpjpe < 60  # mm; a wrong person would be metres off
    out = runner.invoke(app, ["eval", str(two / "output" / "people"), "--gt", str(two / "ground_truth")])
    assert out.exit_code == 0 and "identity switches: 0" in out.output
    from mocap.viz.report import people_table

    table = people_table(two)
    assert [r[0] for r in table.rows] == ["0", "1"]
    err = np.load(two / "output" / "people" / "1" / "smpl.npz")["reprojection_error_px"]
    assert float(table.rows[1][3]) == pytest.approx(np.nanmean(err), abs=0.01)
    bad = runner.invoke(app, ["run", str(two), "--person", "7"])
    assert bad.exit_code == 2 and "--person 7: no such person" in bad.output


def test_a_view_following_someone_else_is_left_out_and_flagged(two, tmp_path):
    """What a single-person detector does on a two-person take: one slot per view, cam3 on the other person."""
    import shutil

    root = tmp_path / "single"
    shutil.copytree(two, root, ignore=shutil.ignore_patterns("people", "smpl.npz"))
    det = read_detections(root / "output" / "keypoints2d.h5")
    person = np.load(root / "ground_truth.npz")["detection_person"]
    want = np.zeros(person.shape[:2], int)
    want[:, 3] = 1  # cam3 follows person 1, the others person 0
    slot = np.argmax(person == want[..., None], -1)
    one = det.pick(np.where((person == want[..., None]).any(-1), slot, -1))
    write_keypoints(root / "output" / "keypoints2d.h5", Detections2D.from_keypoints(one))
    result = runner.invoke(app, ["run", str(root)])
    assert result.exit_code == 0, result.output
    z = np.load(root / "output" / "smpl.npz")
    seen = one.detected[:, 3]
    assert not z["views_used"][:, 3].any()
    assert (z["view_reasons"][seen, 3] == VIEW_REASONS.index("disagrees")).all()
    assert "cam3: left out of" in result.output.replace("\n", " ")
    assert not (root / "output" / "people" / "1").exists()  # nobody else is seen by two views


def test_far_views_flags_only_the_view_far_from_the_others():
    from types import SimpleNamespace

    import torch

    from mocap.fitting.people import far_views
    from mocap.synth.rig import ring_rig

    rig = ring_rig(4, np.random.default_rng(0))
    err = np.full((3, 4), 10.0)  # px: ~3 cm at the body 4 m away
    err[0, 2] = 400.0  # ~1 m: another person
    err[1, :] = 400.0  # every view as bad: nothing to single out
    res = SimpleNamespace(params=SimpleNamespace(transl=torch.zeros(3, 3, dtype=torch.float64)), error_px=err,
                          views_used=np.ones((3, 4), bool))
    far = far_views(res, rig, 0.15)
    assert far[0, 2] and far.sum() == 1


def test_shape_per_person(two, tmp_path):
    from mocap.io.subject import load_subject

    out = tmp_path / "subject1.npz"
    res = runner.invoke(app, ["shape", str(two), "--frames", "0:12", "-o", str(out), "--person", "1"])
    assert res.exit_code == 0, res.output
    subject = load_subject(out)
    truth = [np.load(two / "ground_truth" / f"{k}.npz")["betas"] for k in range(2)]
    from mocap.fitting.run import load_inputs

    assoc = load_inputs(two).association
    slot_truth = np.load(two / "ground_truth.npz")["detection_person"]
    own = int(np.bincount(slot_truth[assoc.person == 1]).argmax())  # the true person behind id 1
    d = [np.linalg.norm(subject.betas - t) for t in truth]
    assert subject.meta["person"] == 1 and d[own] < d[1 - own]  # that person's shape, not the other's


def test_far_views_are_refitted_until_none_is_left():
    """A wrong view (2) drags the first fit so far that another (3) stands out only once it is gone."""
    from types import SimpleNamespace

    import torch

    from mocap.fitting.people import fit_without_far_views
    from mocap.io.keypoints_h5 import Keypoints2D
    from mocap.synth.rig import ring_rig

    rig = ring_rig(4, np.random.default_rng(0))
    F, V, K = 2, 4, 3
    kp = Keypoints2D(tuple(rig.names), np.ones((F, V, K, 3)), np.zeros((F, V, 4)), np.ones((F, V), bool),
                     np.full((V, 2), 640), "test", tuple("abc"), 30.0)
    calls, changed = [], []

    def fit(k, *previous):  # a refit also gets the fit before and the frames whose detections changed
        gone = ~k.detected[0]
        calls.append(gone.copy())
        changed.append(previous[1] if previous else None)
        err = np.full((F, V), 10.0)
        err[0] = [400.0, 300.0, 150.0, 2000.0] if not gone.any() else [10.0, 10.0, 400.0, np.nan]
        err[0, gone] = np.nan
        return fit_result(err, k.detected.copy()), {}

    from mocap.fitting.association import AssociationConfig

    res, _, used, far, _ = fit_without_far_views(fit, kp, rig, AssociationConfig(far_passes=3))
    assert far[0, 3] and far[0, 2] and far.sum() == 2
    assert len(calls) == 3 and not used.detected[0, 2:].any() and np.isnan(used.keypoints[0, 2:]).all()
    assert changed[0] is None and all(c.tolist() == [True, False] for c in changed[1:])
    assert used.detected[1].all()
    assert kp.detected.all() and np.isfinite(kp.keypoints).all()  # the later passes change a copy, not the caller's
    _, _, _, once, _ = fit_without_far_views(fit, kp, rig, AssociationConfig(far_passes=1))
    assert once.sum() == 1  # one refit only: view 2 is not found


def test_far_keypoints_flags_a_leg_on_another_person():
    """Keypoints projected from the body match the detections but one, moved 0.5 m sideways at its depth."""
    from types import SimpleNamespace

    import torch

    from mocap.fitting.association import AssociationConfig
    from mocap.fitting.people import far_keypoints, fit_without_far_views
    from mocap.io.keypoints_h5 import Keypoints2D
    from mocap.synth.rig import ring_rig

    rig = ring_rig(3, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    X = rng.normal(0, 0.3, (2, 5, 3)) + [0, 1, 0]  # (F, K, 3) near the ring's centre
    uv = np.stack([rig[c].project(X) for c in rig.names], 1)  # (F, V, K, 2)
    other = rig[rig.names[1]]
    side = X[1, 2] + 0.5 * other.R[0]  # 0.5 m along the camera's x axis
    uv[1, 1, 2] = other.project(side[None])[0]
    kp = Keypoints2D(tuple(rig.names), np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], -1),
                     np.zeros((2, 3, 4)), np.ones((2, 3), bool), np.full((3, 2), 640), "test", tuple("abcde"), 30.0)
    far = far_keypoints(X, kp, rig, 0.25)
    assert far[1, 1, 2] and far.sum() == 1
    assert not far_keypoints(X, kp, rig, 0.6).any()
    assert np.array_equal(far_keypoints(X, kp, rig, 0.25, chunk=1), far)  # a frame at a time (a long take's memory)

    def fit(k, *previous):  # a perfect body whatever the detections: the keypoint is dropped once, then nothing is left
        return fit_result(np.full((2, 3), 5.0), k.detected.copy()), {}

    _, _, used, views, dropped = fit_without_far_views(fit, kp, rig, AssociationConfig(), lambda r: X)
    assert dropped == 1 and not views.any() and np.isnan(used.keypoints[1, 1, 2]).all()
    assert np.isfinite(used.keypoints[0]).all()


def test_implausible_keypoints_outvoted_by_the_views_or_by_the_frames_around():
    """A keypoint off by 0.5 m where all three views see it (the others outvote it), and one where only two
    do (they agree with each other, not with the frames around): both left out before the first fit."""
    from types import SimpleNamespace

    import torch

    from mocap.fitting.association import AssociationConfig
    from mocap.fitting.config import FitConfig
    from mocap.fitting.people import fit_without_far_views, implausible_keypoints
    from mocap.io.keypoints_h5 import Keypoints2D
    from mocap.synth.rig import ring_rig

    rig = ring_rig(3, np.random.default_rng(0))
    F, V, K = 7, 3, 4
    rng = np.random.default_rng(1)
    X = rng.normal(0, 0.3, (K, 3)) + [0, 1, 0] + np.arange(F)[:, None, None] * [0.01, 0, 0]  # (F, K, 3) walking
    uv = np.stack([rig[c].project(X) for c in rig.names], 1)  # (F, V, K, 2)
    for f, v, k in [(4, 0, 0), (3, 1, 2)]:
        cam = rig[rig.names[v]]
        uv[f, v, k] = cam.project((X[f, k] + 0.5 * cam.R[0])[None])[0]  # 0.5 m along the camera's x axis
    uv[3, 2, 2] = np.nan  # the second seen by two views only
    kp = Keypoints2D(tuple(rig.names), np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], -1),
                     np.zeros((F, V, 4)), np.ones((F, V), bool), np.full((V, 2), 640), "test", tuple("abcd"), 30.0)
    points = SimpleNamespace(weights=torch.ones(K))
    bad = implausible_keypoints(kp, rig, points, FitConfig())
    assert bad[4, 0, 0] and bad[3, 1, 2] and bad.sum() == 2
    assert np.array_equal(implausible_keypoints(kp, rig, points, FitConfig(), chunk=2), bad)  # a long take's chunks
    off = FitConfig(association=AssociationConfig(max_keypoint_error=0))
    assert implausible_keypoints(kp, rig, points, off) is None

    seen = []

    def fit(k, *previous):  # a perfect body: nothing far from it, no refit
        seen.append(np.isnan(k.keypoints[..., 0]))
        return fit_result(np.full((F, V), 5.0), k.detected.copy()), {}

    _, _, used, views, dropped = fit_without_far_views(fit, kp, rig, AssociationConfig(), lambda r: X, bad)
    assert len(seen) == 1 and np.array_equal(seen[0], bad | np.isnan(uv[..., 0]))
    assert dropped == 0 and not views.any() and np.isfinite(kp.keypoints[4, 0, 0]).all()  # the caller's kept
    _, _, used, _, _ = fit_without_far_views(fit, kp, rig, AssociationConfig(), lambda r: X, bad, in_place=True)
    assert used.keypoints is kp.keypoints and np.isnan(kp.keypoints[4, 0, 0]).all()  # the caller's, no copy
