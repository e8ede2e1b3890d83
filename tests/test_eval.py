"""`mocap eval`: metrics with answers known by construction, the file loaders, the CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from mocap.body.model import JOINT_NAMES
from mocap.cli import app
from mocap.errors import InputDataError
from mocap.eval.evaluate import evaluate_files, match_frames
from mocap.eval.loaders import body_spec, load_sequence
from mocap.eval.metrics import compute_metrics, similarity_align

runner = CliRunner()
J = len(JOINT_NAMES)


@pytest.fixture
def joints() -> np.ndarray:
    """(F, 24, 3) a smooth random joint trajectory, metres."""
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.3, (J, 3)) + [0, 1, 0]
    t = np.arange(30)[:, None, None] / 30
    return base + 0.2 * np.sin(2 * np.pi * t + rng.uniform(0, 6, (1, J, 3)))


def metrics(pred, gt, **kw):
    return compute_metrics(pred, gt, JOINT_NAMES, np.arange(len(gt)), len(gt), **kw)


def test_similarity_align_recovers_a_known_similarity():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 24, 3))
    R = Rotation.random(5, random_state=2).as_matrix()
    s, t = rng.uniform(0.5, 2, 5), rng.normal(size=(5, 1, 3))
    Y = s[:, None, None] * np.einsum("fij,fnj->fni", R, X) + t
    np.testing.assert_allclose(similarity_align(X, Y), Y, atol=1e-10)


def test_similarity_align_never_reflects():
    X = np.random.default_rng(3).normal(size=(24, 3))
    Y = X * [-1, 1, 1]  # a mirror image: the best proper rotation cannot reach it
    assert np.abs(similarity_align(X, Y) - Y).max() > 0.1


def test_translated_copy(joints):
    offset = np.array([0.3, -0.1, 0.2])
    m = metrics(joints + offset, joints)
    assert m.mpjpe == pytest.approx(0, abs=1e-9)
    assert m.pa_mpjpe == pytest.approx(0, abs=1e-6)
    assert m.global_mpjpe == pytest.approx(np.linalg.norm(offset) * 1000, rel=1e-12)
    assert m.accel_error == pytest.approx(0, abs=1e-9)


def test_rotated_copy(joints):
    R = Rotation.from_rotvec([0.2, 1.0, -0.3]).as_matrix()
    rotated = (joints - joints[:, :1]) @ R.T + joints[:, :1]  # about the pelvis
    m = metrics(rotated, joints)
    assert m.pa_mpjpe == pytest.approx(0, abs=1e-6)
    assert m.mpjpe > 50


def test_scaled_copy(joints):
    rel = joints - joints[:, :1]
    m = metrics(joints[:, :1] + 1.1 * rel, joints)
    assert m.pa_mpjpe == pytest.approx(0, abs=1e-6)
    assert m.mpjpe == pytest.approx(0.1 * np.linalg.norm(rel, axis=-1).mean() * 1000, rel=1e-10)


def test_one_joint_displaced_by_10_cm(joints):
    pred = joints.copy()
    pred[:, JOINT_NAMES.index("left_wrist")] += [0.0, 0.0, 0.1]
    m = metrics(pred, joints)
    assert m.per_joint["left_wrist"] == pytest.approx(100.0, abs=1e-9)
    assert all(v == pytest.approx(0, abs=1e-9) for n, v in m.per_joint.items() if n != "left_wrist")
    assert m.mpjpe == pytest.approx(100.0 / J)
    assert m.global_mpjpe == pytest.approx(100.0 / J)


def test_acceleration_error_of_a_one_frame_spike(joints):
    pred = joints.copy()
    pred[10, 5] += [0.0, 0.01, 0.0]  # 10 mm on one joint in one frame
    m = metrics(pred, joints)
    triplets = len(joints) - 2
    # The spike enters the second differences centred on frames 9, 10, 11 with weights 1, 2, 1.
    assert m.accel_error == pytest.approx((10 + 20 + 10) / (J * triplets))


def test_match_frames_with_offset():
    p, g = match_frames(10, 12, offset=5)
    np.testing.assert_array_equal(p, np.arange(7))
    np.testing.assert_array_equal(g, np.arange(5, 12))
    p, g = match_frames(10, 12, offset=-3)
    np.testing.assert_array_equal(p, np.arange(3, 10))
    np.testing.assert_array_equal(g, np.arange(0, 7))


def test_no_frame_to_evaluate():
    m = compute_metrics(np.zeros((0, J, 3)), np.zeros((0, J, 3)), JOINT_NAMES, np.zeros(0, int), 10)
    assert m.frames_evaluated == 0 and np.isnan(m.mpjpe)


# --- loaders ------------------------------------------------------------------------------------

def _amass(path, F=6, pose_dim=72, **extra):
    rng = np.random.default_rng(4)
    data = dict(poses=rng.normal(0, 0.2, (F, pose_dim)), trans=rng.normal(0, 1, (F, 3)), betas=rng.normal(0, 1, 10),
                gender=np.str_("neutral"), mocap_framerate=np.float64(60), surface_model=np.str_("open_body_neutral"))
    data.update(extra)
    np.savez(path, **data)
    return data


def test_load_amass_smplh_ignores_hands(tmp_path):
    d = _amass(tmp_path / "a.npz", pose_dim=156, betas=np.arange(16.0), surface_model=np.str_("SMPL+H"),
               gender=np.str_("male"))
    seq = load_sequence(tmp_path / "a.npz")
    np.testing.assert_array_equal(seq.poses.reshape(6, -1)[:, :66], d["poses"][:, :66])
    np.testing.assert_array_equal(seq.poses[:, 22:], 0)  # SMPL's hand joints: identity
    np.testing.assert_array_equal(seq.betas, np.broadcast_to(np.arange(10.0), (6, 10)))
    assert (seq.layout, seq.gender, body_spec(seq)) == ("smplh", "male", "smpl")


def test_load_ours_keeps_all_72(tmp_path):
    d = _amass(tmp_path / "a.npz")
    seq = load_sequence(tmp_path / "a.npz")
    np.testing.assert_array_equal(seq.poses.reshape(6, 72), d["poses"])
    assert body_spec(seq) == "open" and seq.fps == 60


def test_load_spin_rotation_matrices(tmp_path):
    aa = np.random.default_rng(5).normal(0, 0.3, (4, 24, 3))
    R = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(4, 24, 3, 3)
    np.savez(tmp_path / "s.npz", pose=R, shape=np.zeros((4, 10)))
    seq = load_sequence(tmp_path / "s.npz")
    np.testing.assert_allclose(seq.poses, aa, atol=1e-9)
    assert seq.trans is None and body_spec(seq) == "smpl"


def test_nan_frames_are_not_valid(tmp_path):
    d = _amass(tmp_path / "a.npz")
    d["poses"][2] = np.nan
    np.savez(tmp_path / "b.npz", **d)
    assert load_sequence(tmp_path / "b.npz").valid.tolist() == [True, True, False, True, True, True]


@pytest.mark.parametrize("data, message", [
    (dict(foo=np.zeros(3)), "neither AMASS-style"),
    (dict(poses=np.zeros((5, 70)), trans=np.zeros((5, 3)), betas=np.zeros(10)), "poses have shape"),
    (dict(poses=np.zeros((5, 72)), trans=np.zeros((4, 3)), betas=np.zeros(10)), "trans has shape"),
    (dict(poses=np.zeros((5, 72)), betas=np.zeros(10)), "lacks 'trans'"),
    (dict(pose=np.zeros((5, 72))), "lacks 'shape'"),
])
def test_bad_files(tmp_path, data, message):
    np.savez(tmp_path / "x.npz", **data)
    with pytest.raises(InputDataError, match=message):
        load_sequence(tmp_path / "x.npz")


def test_unknown_body_model_name(tmp_path):
    _amass(tmp_path / "a.npz", surface_model=np.str_("mystery"))
    with pytest.raises(InputDataError, match="--body"):
        body_spec(load_sequence(tmp_path / "a.npz"))


# --- through a body model -------------------------------------------------------------------------

def test_evaluate_files_translated_and_offset(tmp_path, any_body_spec):
    d = _amass(tmp_path / "gt.npz", F=12)
    shifted = dict(d, trans=d["trans"] + [0.0, 0.0, 0.25])
    np.savez(tmp_path / "pred.npz", **shifted)
    m = evaluate_files(tmp_path / "pred.npz", tmp_path / "gt.npz", body=any_body_spec)
    assert m.mpjpe == pytest.approx(0, abs=1e-3) and m.pve == pytest.approx(0, abs=1e-3)
    assert m.global_mpjpe == pytest.approx(250.0, abs=1e-3)
    cut = {k: (v[3:] if k in ("poses", "trans") else v) for k, v in d.items()}
    np.savez(tmp_path / "cut.npz", **cut)
    m = evaluate_files(tmp_path / "cut.npz", tmp_path / "gt.npz", offset=3, body=any_body_spec)
    assert m.global_mpjpe == pytest.approx(0, abs=1e-3) and m.frames_evaluated == pytest.approx(9 / 12)


def test_cli_eval_json_and_plot(tmp_path, any_body_spec):
    _amass(tmp_path / "gt.npz", F=8)
    out = runner.invoke(app, ["eval", str(tmp_path / "gt.npz"), "--gt", str(tmp_path / "gt.npz"), "--body",
                              any_body_spec, "--json", str(tmp_path / "m.json"), "--plot", str(tmp_path / "m.png")])
    assert out.exit_code == 0, out.output
    doc = json.loads((tmp_path / "m.json").read_text())
    assert set(doc) == {"mpjpe", "pa_mpjpe", "pve", "global_mpjpe", "accel_error", "per_joint", "frames_evaluated"}
    assert set(doc["per_joint"]) == set(JOINT_NAMES) and doc["frames_evaluated"] == 1.0
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_cli_eval_bad_input_exits_2(tmp_path):
    np.savez(tmp_path / "x.npz", foo=np.zeros(2))
    out = runner.invoke(app, ["eval", str(tmp_path / "x.npz"), "--gt", str(tmp_path / "x.npz")])
    assert out.exit_code == 2 and "neither AMASS-style" in out.output
    out = runner.invoke(app, ["eval", str(tmp_path / "missing.npz"), "--gt", str(tmp_path / "x.npz")])
    assert out.exit_code == 2 and "not found" in out.output
