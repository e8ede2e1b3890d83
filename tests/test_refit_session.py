"""`mocap run --pipeline refit`: what it asks for when weights or SMPL are missing, and a tiny end-to-end run
(recipe weights of the reference data, fake SMPL body; skipped without ../shared)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mocap.body.model import JOINT_NAMES
from mocap.cameras import Camera, CameraRig
from mocap.cli import app
from mocap.errors import MissingDependencyError
from mocap.io.calibration_toml import save_rig
from mocap.io.keypoints_h5 import Keypoints2D, write_keypoints
from mocap.io.smpl_npz import load_sequence
from mocap.rotations import axis_angle_to_matrix

runner = CliRunner()
W, H, F = 320, 240, 3


def _rig() -> CameraRig:
    cams = []
    for v in range(2):
        R = axis_angle_to_matrix(torch.tensor([0.05, math.pi / 2 * v + 0.2, 0.0])).double().numpy()
        R = np.diag([-1.0, -1.0, 1.0]) @ R  # image up along world +y: mocap refuses a rig that is upside down
        t = np.array([0.0, 0.0, 3.5]) - R @ np.array([0.0, 0.1, 0.0])
        K = np.array([[300.0 + 5 * v, 0, 160.0], [0, 302.0, 121.0], [0, 0, 1]])
        cams.append(Camera(f"cam{v}", K, [0.01 * v, 0.0, 0.0, 0.0, 0.0], R, t, (W, H)))
    return CameraRig(tuple(cams))


def _session(root, body: str | None = None):
    """Two views, three frames of noise images; the person box is missing in both views in the last frame."""
    import cv2

    rig = _rig()
    rng = np.random.default_rng(0)
    for cam in rig.names:
        (root / "images" / cam).mkdir(parents=True)
        for f in range(F):
            cv2.imwrite(str(root / "images" / cam / f"{f:04d}.png"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    save_rig(rig, root / "calibration.toml")
    boxes = np.tile(np.array([110.0, 40.0, 210.0, 230.0], np.float32), (F, 2, 1))
    detected = np.ones((F, 2), bool)
    boxes[2], detected[2] = np.nan, False
    # Keypoints of one 3D point set seen by both cameras, so that the views agree on one person.
    X = np.array([0.0, 0.1, 0.0]) + rng.uniform(-0.3, 0.3, (F, 24, 3))
    uv = np.stack([cam.project(X.reshape(-1, 3)).reshape(F, 24, 2) for cam in rig], 1)
    kp = np.concatenate([uv, rng.uniform(0.5, 1.0, (F, 2, 24, 1))], -1).astype(np.float32)
    kp[2] = np.nan
    write_keypoints(root / "output" / "keypoints2d.h5",
                    Keypoints2D(rig.names, kp, boxes, detected, np.array([[W, H]] * 2), "smpl24", JOINT_NAMES, 30.0))
    if body is not None:
        (root / "session.yaml").write_text(f"body: {body}\n")
    return root


def test_cli_names_everything_missing_in_one_message(tmp_path, monkeypatch):
    monkeypatch.delenv("MOCAP_SMPL_DIR", raising=False)
    root = _session(tmp_path / "s")
    result = runner.invoke(app, ["run", str(root), "--pipeline", "refit"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    text = " ".join(result.output.split())  # rich wraps long lines
    assert lines[0].startswith("error:")
    assert "checkpoint_best.pth.tar" in text and "--checkpoint" in text
    assert "MOCAP_SMPL_DIR" in text and "smpl.is.tue.mpg.de" in text
    assert not (root / "output" / "smpl.npz").exists()


def test_missing_checkpoint_file_and_wrong_body_mesh(tmp_path, tiny_body_path):
    from mocap.fitting.run import run_session

    root = _session(tmp_path / "s", body=str(tiny_body_path))
    with pytest.raises(MissingDependencyError) as e:
        run_session(root, pipeline="refit+keypoints", checkpoint=tmp_path / "nope.pth.tar")
    message = str(e.value)
    assert "nope.pth.tar not found" in message and "6890" in message and "MOCAP_SMPL_DIR" in message
    assert "\n" not in message


@pytest.fixture(scope="module")
def recipe_checkpoint(shared_dir, tmp_path_factory):
    """The reference data's recipe weights (HRNet-W32) as a checkpoint without SMPL buffers."""
    from mocap.fitting.refit.reference import build_reference_model

    ref = shared_dir / "refit_reference"
    if not ref.is_dir():
        pytest.skip(f"{ref} not present")
    model = build_reference_model(ref, "w32")
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint_best.pth.tar"
    torch.save({"model": {k: v for k, v in model.state_dict().items() if not k.startswith("smpl")}, "epoch": 1}, path)
    return path, ref / "fake_smpl.npz"


def test_refit_pipeline_end_to_end_writes_a_valid_smpl_npz(tmp_path, recipe_checkpoint, monkeypatch):
    import shutil

    from mocap.detect.crops import center_scale
    from mocap.fitting.refit import fit_refit_multiview, load_refit, make_crops
    from mocap.io.video import read_frames

    checkpoint, fake_smpl = recipe_checkpoint
    # The user's route: session body `open` (the default) and SMPL's files in $MOCAP_SMPL_DIR.
    (tmp_path / "smpl").mkdir()
    shutil.copy(fake_smpl, tmp_path / "smpl" / "SMPL_NEUTRAL.npz")
    monkeypatch.setenv("MOCAP_SMPL_DIR", str(tmp_path / "smpl"))
    root = _session(tmp_path / "s")
    result = runner.invoke(app, ["run", str(root), "--pipeline", "refit", "--checkpoint", str(checkpoint)])
    assert result.exit_code == 0, result.output
    seq = load_sequence(root / "output" / "smpl.npz")
    assert seq.poses.shape == (F, 24, 3) and seq.surface_model == "smpl_neutral"
    assert np.isfinite(seq.poses[:2]).all() and np.isfinite(seq.trans[:2]).all() and np.isfinite(seq.betas).all()
    assert np.isnan(seq.trans[2]).all()  # no box in any view
    assert seq.extra["flags"][2] & 1 and seq.extra["reprojection_error_px"].shape == (F, 2)
    assert seq.meta["refit"]["backbone"] == "w32" and seq.meta["refit"]["mode"] == "world"
    assert seq.meta["pipeline"]["updater"] == "refit"
    # The session plumbing (crops from the detector's boxes, the session's intrinsics) equals a direct call.
    rig = _rig()
    images = [next(read_frames(root / "images" / c, 0, 1)) for c in rig.names]
    center, scale = center_scale(np.tile(np.array([110.0, 40.0, 210.0, 230.0]), (2, 1)))
    crops, c, s = make_crops(images, center, scale)
    body_model = load_refit(checkpoint, body=str(fake_smpl))
    direct = fit_refit_multiview(crops[None], c[None], s[None], rig, body_model, iters=10)
    rot = axis_angle_to_matrix(torch.as_tensor(seq.poses[0])).numpy()
    assert np.allclose(rot[0], direct.global_orient[0], atol=1e-4)
    assert np.allclose(rot[1:], direct.body_pose[0], atol=1e-4)


def test_keypoint_updater_starts_from_given_bodies():
    """refit+keypoints: ReFit's bodies replace triangulation + IK as the keypoint updater's start."""
    from mocap.body.model import load_body
    from mocap.fitting.config import FitConfig, SmoothingConfig
    from mocap.fitting.params import BodyParams
    from mocap.fitting.sequence import fit_sequence
    from tests.fitting_data import body_spec, joints_spec, keypoints, motion, ring_rig

    body, spec, rig = load_body(body_spec()), joints_spec(), ring_rig(3)
    truth = motion(4)
    kp = keypoints(body, spec, truth, rig)
    other = truth.betas + 0.5  # the start's own shape differs from the subject's
    start = BodyParams(truth.global_orient, truth.body_pose, other, truth.transl.clone())
    start.transl[2] = float("nan")  # no ReFit body for frame 2: triangulation + IK as usual
    cfg = FitConfig(iterations=0, smoothing=SmoothingConfig(sigma_frames=0.0))
    res = fit_sequence(kp, rig, body, spec, cfg, betas=truth.betas[0], start=start).params
    keep = [0, 1, 3]
    assert torch.equal(res.rotations[keep], truth.rotations[keep])
    root_start = body.rest_joints(other[keep])[:, 0] + truth.transl[keep]
    root_res = body.rest_joints(res.betas[keep])[:, 0] + res.transl[keep]
    assert torch.allclose(root_res, root_start, atol=1e-5)
    assert torch.isfinite(res.transl[2]).all() and not torch.equal(res.rotations[2], truth.rotations[2])
