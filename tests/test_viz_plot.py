"""Joint angles against an independent formula; plots written from a small session."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from mocap.cli import app
from mocap.viz.plot import joint_angles, reprojection_errors, write_plots
from mocap.viz.result import load_result
from tests.viz_data import make_session


def test_joint_angles_are_rotation_angles_from_rest():
    rng = np.random.default_rng(0)
    axis = rng.normal(size=(5, 24, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0, np.pi - 0.01, (5, 24))
    poses = axis * angle[..., None]
    np.testing.assert_allclose(joint_angles(poses), np.degrees(angle), atol=1e-6)
    # Beyond pi the rotation is the same as 2*pi - angle about the axis: the geodesic angle folds back.
    np.testing.assert_allclose(joint_angles(axis[:1] * 4.0), np.degrees(2 * np.pi - 4.0), atol=1e-6)
    poses[2] = np.nan
    assert np.isnan(joint_angles(poses)[2]).all() and np.isfinite(joint_angles(poses)[[0, 1, 3, 4]]).all()


def test_plots_written(tmp_path):
    make_session(tmp_path, cameras=2, frames=5)
    res = load_result(tmp_path / "output" / "smpl.npz")
    err, cams = reprojection_errors(res)
    assert err.shape == (5, 2) and cams == ("cam0", "cam1")
    out = CliRunner().invoke(app, ["viz", "plot", str(tmp_path / "output" / "smpl.npz")])
    assert out.exit_code == 0, out.output
    import cv2

    for name in ("joint_angles.png", "errors.png"):
        img = cv2.imread(str(tmp_path / "output" / name))
        assert img is not None and img.shape[0] > 200 and img.std() > 5


def test_plot_with_ground_truth(tmp_path):
    pytest.importorskip("mocap.eval.evaluate")
    make_session(tmp_path, cameras=2, frames=5, gt=True)
    paths = write_plots(tmp_path / "output" / "smpl.npz", tmp_path / "plots", gt=tmp_path / "ground_truth.npz")
    assert [p.name for p in paths] == ["joint_angles.png", "anatomical_angles.csv", "anatomical_angles.png", "errors.png"]


def test_missing_result_is_a_clear_error(tmp_path):
    out = CliRunner().invoke(app, ["viz", "plot", str(tmp_path / "nope.npz")])
    assert out.exit_code == 2 and "nope.npz" in out.output


def test_joint_angles_match_scipy_rotation_magnitudes():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(5)
    poses = rng.normal(0, 1, (20, 24, 3)) * rng.uniform(0, 3 * np.pi, (20, 24, 1)) / np.sqrt(3)
    expected = np.degrees(Rotation.from_rotvec(poses.reshape(-1, 3)).magnitude()).reshape(20, 24)
    np.testing.assert_allclose(joint_angles(poses), expected, atol=1e-9)
