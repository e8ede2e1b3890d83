"""Anatomical angles on poses whose angles are known, through `mocap viz plot` (CSV), and checked against the
geometry of the posed body (where the limb actually points), not only against the construction."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from mocap.body.model import JOINT_NAMES, load_body
from mocap.cli import app
from mocap.io.smpl_npz import SmplSequence, save_sequence

J = {n: i for i, n in enumerate(JOINT_NAMES)}


def rotvec(seq: str, *deg) -> np.ndarray:
    return Rotation.from_euler(seq, deg, degrees=True).as_rotvec()


def known_poses() -> tuple[np.ndarray, list[dict[str, float]]]:
    """(F, 24, 3) poses, arms hanging down, and per frame the angles that must come out (others 0)."""
    frames = [
        ({}, {}),
        ({"left_knee": rotvec("x", 90)}, {"left_knee_flexion": 90}),
        ({"right_hip": rotvec("z", -45)}, {"right_hip_abduction": 45}),  # the right leg moves to -x: outwards
        ({"left_hip": rotvec("z", 45)}, {"left_hip_abduction": 45}),
        ({"left_hip": rotvec("XZ", -30, 20)}, {"left_hip_flexion": 30, "left_hip_abduction": 20}),
        ({"right_elbow": rotvec("y", 90)}, {"right_elbow_flexion": 90}),
        ({"left_hip": rotvec("y", -30), "left_knee": rotvec("x", 90)},
         {"left_hip_rotation": 30, "left_knee_flexion": 90}),
    ]
    poses = np.zeros((len(frames) + 1, 24, 3))
    poses[:, J["left_shoulder"]] = rotvec("z", -90)  # arms down: the shoulders' neutral
    poses[:, J["right_shoulder"]] = rotvec("z", 90)
    for f, (joints, _) in enumerate(frames):
        for name, value in joints.items():
            poses[f, J[name]] = value
    # left shoulder flexed 90 degrees: the arm-down humerus turned forward about the thorax's lateral axis
    poses[-1, J["left_shoulder"]] = (Rotation.from_euler("x", -90, degrees=True) *
                                     Rotation.from_euler("z", -90, degrees=True)).as_rotvec()
    return poses, [e for _, e in frames] + [{"left_shoulder_flexion": 90}]


def read_csv(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows


def test_known_angles_through_viz_plot(tmp_path):
    poses, expected = known_poses()
    seq = SmplSequence(poses, np.zeros((len(poses), 3)), np.zeros(10), "neutral", 25.0, "tiny_body")
    save_sequence(tmp_path / "smpl.npz", seq)
    r = CliRunner().invoke(app, ["viz", "plot", str(tmp_path / "smpl.npz")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "anatomical_angles.png").stat().st_size > 10_000
    rows = read_csv(tmp_path / "anatomical_angles.csv")
    assert len(rows) == len(poses) and len(rows[0]) == 2 + 2 * 4 * 3
    assert float(rows[1]["time_s"]) == pytest.approx(0.04)
    for f, want in enumerate(expected):
        for key, value in rows[f].items():
            if key in ("frame", "time_s"):
                continue
            assert float(value) == pytest.approx(want.get(key, 0.0), abs=1e-3), (f, key)


def test_the_convention_matches_where_the_limbs_point(tiny_body_path):
    """Independent of the formula: flexed knee -> shank backward, abducted hip -> thigh 45 degrees outwards,
    flexed shoulder -> arm forward, flexed elbow -> forearm forward, internally rotated hip (knee bent) -> shank
    swings outwards."""
    body = load_body(tiny_body_path)
    poses, _ = known_poses()
    with torch.no_grad():
        j = body.forward(torch.as_tensor(poses[:, 0]), torch.as_tensor(poses[:, 1:]), torch.zeros(len(poses), 10),
                         torch.zeros(len(poses), 3)).joints.double().numpy()

    def direction(f, a, b):
        d = j[f, J[b]] - j[f, J[a]]
        return d / np.linalg.norm(d)

    np.testing.assert_allclose(direction(1, "left_knee", "left_ankle"), [0, 0, -1], atol=0.1)  # the rest limbs of the tiny body are a few degrees off the axes
    np.testing.assert_allclose(direction(0, "left_shoulder", "left_elbow"), [0, -1, 0], atol=0.1)  # the rest limbs of the tiny body are a few degrees off the axes
    thigh = direction(2, "right_hip", "right_knee")
    rest = direction(0, "right_hip", "right_knee")
    assert np.degrees(np.arccos(thigh @ rest)) == pytest.approx(45, abs=0.5) and thigh[0] < rest[0]  # outwards
    np.testing.assert_allclose(direction(5, "right_elbow", "right_wrist"), [0, 0, 1], atol=0.1)  # the rest limbs of the tiny body are a few degrees off the axes
    np.testing.assert_allclose(direction(7, "left_shoulder", "left_elbow"), [0, 0, 1], atol=0.1)  # the rest limbs of the tiny body are a few degrees off the axes
    shank = direction(6, "left_knee", "left_ankle")
    assert shank[0] > 0.4 and shank[2] < -0.8  # the left foot swings to the left (+x) when the hip turns in


def test_nan_frames_stay_empty(tmp_path):
    from mocap.viz.angles import anatomical_angles

    poses, _ = known_poses()
    poses[3] = np.nan
    angles = anatomical_angles(poses)
    assert all(np.isnan(v[3]) and np.isfinite(np.delete(v, 3)).all() for v in angles.values())
