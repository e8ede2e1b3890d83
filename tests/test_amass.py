"""AMASS's conventions through `mocap export` and `mocap eval`: the z-up world, the SMPL-H layout, foreign files.

The expected joints are posed independently with the body layer from the original y-up parameters and turned
by the known world rotation (+90 degrees about x); bvhio reads the BVH back.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mocap.body.model import load_body
from mocap.cli import app
from mocap.io.smpl_npz import load_sequence, save_sequence
from tests.test_export import bvhio_joints
from tests.tiny_body import random_sequence

runner = CliRunner()
F = 24
Y_TO_Z = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # written out here, not imported: y -> z, z -> -y


@pytest.fixture(scope="module")
def body(tiny_body_path):
    return load_body(tiny_body_path)


@pytest.fixture(scope="module")
def seq(body):
    s = random_sequence(F, body.name, seed=3)
    s.poses[:, 22:] = 0  # SMPL's hand joints: no SMPL-H counterpart, so a round trip through SMPL-H drops them
    return s


def posed_joints(body, poses, trans, betas) -> np.ndarray:
    """``(F, 24, 3)`` joints from (F, 24, 3) axis-angle, through the body layer."""
    with torch.no_grad():
        out = body.forward(torch.as_tensor(poses[:, 0]), torch.as_tensor(poses[:, 1:]),
                           torch.as_tensor(np.broadcast_to(betas[:10], (len(poses), 10)).copy()), torch.as_tensor(trans))
    return out.joints.double().numpy()


def smplh_poses(flat156: np.ndarray) -> np.ndarray:
    poses = np.zeros((len(flat156), 24, 3))
    poses.reshape(len(flat156), -1)[:, :66] = flat156[:, :66]
    return poses


def test_export_amass_smplh_z_up_is_complete_and_exact(tmp_path, body, tiny_body_path, seq):
    save_sequence(tmp_path / "smpl.npz", seq)
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "--fmt", "npz", "--amass-smplh", "--up", "z",
                            "--body", str(tiny_body_path), "-o", str(tmp_path / "amass.npz")])
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "amass.npz") as z:
        assert z["poses"].shape == (F, 156) and not z["poses"][:, 66:].any()
        assert z["betas"].shape == (16,) and not z["betas"][10:].any()
        np.testing.assert_array_equal(z["betas"][:10], seq.betas)
        assert z["dmpls"].shape == (F, 8) and not z["dmpls"].any()
        assert str(z["up_axis"]) == "z" and str(z["gender"]) == "neutral" and float(z["mocap_framerate"]) == seq.fps
        got = posed_joints(body, smplh_poses(z["poses"]), z["trans"], z["betas"])
    expected = posed_joints(body, seq.poses, seq.trans, seq.betas) @ Y_TO_Z.T
    assert np.abs(got - expected).max() < 1e-5
    # and back: the z-up file to mocap's y-up world
    r = runner.invoke(app, ["export", str(tmp_path / "amass.npz"), "--fmt", "npz", "-o", str(tmp_path / "back.npz"),
                            "--body", str(tiny_body_path)])
    assert r.exit_code == 0, r.output
    back = load_sequence(tmp_path / "back.npz")
    np.testing.assert_allclose(back.poses, seq.poses, atol=1e-9)
    np.testing.assert_allclose(back.trans, seq.trans, atol=1e-9)


def test_z_up_file_is_refused_where_only_y_up_is_read(tmp_path, tiny_body_path, seq):
    save_sequence(tmp_path / "smpl.npz", seq)
    runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "-o", str(tmp_path / "z.npz"), "--up", "z",
                        "--body", str(tiny_body_path)])
    r = runner.invoke(app, ["viz", "plot", str(tmp_path / "z.npz"), "-o", str(tmp_path)])
    assert r.exit_code == 2 and "z-up file" in r.output, r.output
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "--fmt", "glb", "--up", "z", "--body", str(tiny_body_path)])
    assert r.exit_code == 2 and "y-up by its own convention" in r.output


def amass_file(path, body, seq, gender="male", rate_key="mocap_framerate"):
    """What AMASS distributes: z-up, SMPL-H's 156 poses, 16 betas, dmpls, no surface_model."""
    from mocap.io.amass import to_up_axis

    z = to_up_axis(seq, "y", "z", body)
    poses = np.zeros((F, 156))
    poses[:, :66] = z.poses.reshape(F, -1)[:, :66]
    betas = np.concatenate([seq.betas, np.zeros(6)])
    np.savez(path, poses=poses, trans=z.trans, betas=betas, gender=np.array(gender), **{rate_key: np.array(seq.fps)},
             dmpls=np.random.default_rng(0).normal(size=(F, 8)))
    return path


def test_any_amass_file_to_bvh(tmp_path, body, tiny_body_path, seq):
    path = amass_file(tmp_path / "walk_poses.npz", body, seq)
    r = runner.invoke(app, ["export", str(path), "--fmt", "bvh"])
    assert r.exit_code == 2 and "pass --body" in r.output, r.output
    r = runner.invoke(app, ["export", str(path), "--fmt", "bvh", "--body", str(tiny_body_path), "--gender", "neutral"])
    assert r.exit_code == 0, r.output
    assert "z-up world (detected" in r.output
    got, _ = bvhio_joints(tmp_path / "walk_poses.bvh", range(F))
    expected = posed_joints(body, seq.poses, seq.trans, seq.betas)  # mocap's y-up world
    assert np.abs(got - expected).max() < 1e-3


def test_open_body_refuses_a_gendered_file_until_told(tmp_path, body, seq):
    path = amass_file(tmp_path / "a.npz", body, seq, gender="female", rate_key="mocap_frame_rate")  # SMPL-X release
    r = runner.invoke(app, ["export", str(path), "--fmt", "npz", "--body", "open", "-o", str(tmp_path / "o.npz")])
    assert r.exit_code == 2 and "--gender neutral" in r.output
    r = runner.invoke(app, ["export", str(path), "--fmt", "npz", "--body", "open", "--gender", "neutral",
                            "-o", str(tmp_path / "o.npz")])
    assert r.exit_code == 0, r.output
    back = load_sequence(tmp_path / "o.npz")
    assert back.surface_model == "open_body_neutral" and back.fps == seq.fps


def test_eval_reads_amass_files_with_body_gender_and_up(tmp_path, body, tiny_body_path, seq):
    save_sequence(tmp_path / "gt.npz", seq)
    path = amass_file(tmp_path / "a.npz", body, seq)
    out = tmp_path / "m.json"
    args = ["eval", str(path), "--gt", str(tmp_path / "gt.npz"), "--body", str(tiny_body_path), "--json", str(out)]
    r = runner.invoke(app, args + ["--gender", "neutral"])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())
    assert m["mpjpe"] < 1e-3 and m["global_mpjpe"] < 1e-3, m
    # told the wrong axis, the same file is 90 degrees off
    r = runner.invoke(app, args + ["--gender", "neutral", "--up", "y"])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["global_mpjpe"] > 100
