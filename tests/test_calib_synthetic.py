"""Calibration against ground truth: a ChArUco board rendered into 4 known cameras at 40 poses."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from mocap.calib.board import Board, BoardDetections
from mocap.calib.calibrate import BOARD_TO_WORLD, calibrate_rig
from mocap.calib.compare import compare_rigs
from mocap.calib.footage import detect_session, session_footage
from mocap.calib.synthetic import make_scene, render_scene
from mocap.cli import app
from mocap.config import BoardConfig
from mocap.errors import CalibrationError
from mocap.io.calibration_toml import load_rig

BOARD = dict(type="charuco", rows=5, cols=7, square=0.08, marker=0.06, dict="4x4_50")
SCENE = dict(radius=1.3, spread=0.4, tilt=40, arc=60, num_poses=40, seed=1)


@pytest.fixture(scope="module")
def scene_session(tmp_path_factory):
    """A session folder with calibration/<cam>/<frame>.png and a session.yaml naming the board."""
    root = tmp_path_factory.mktemp("synthetic_session")
    board = Board(BoardConfig(**BOARD))
    scene = make_scene(board, **SCENE)
    for ci, pi, img in render_scene(board, scene, seed=1):
        folder = root / "calibration" / scene.rig[ci].name
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{pi:04d}.png"), img)
    (root / "session.yaml").write_text(yaml.safe_dump({"board": BOARD}))
    return root, board, scene


@pytest.fixture(scope="module")
def detections(scene_session):
    root, board, _ = scene_session
    _, footage, sizes = session_footage(root)
    return detect_session(board, footage, sizes)


def _check_against_truth(rig, true):
    e = compare_rigs(rig, true)
    assert e.focal.max() < 0.005, e.focal
    assert e.principal_px.max() < 2.0, e.principal_px
    assert e.centre_m.max() < 0.01, e.centre_m
    assert e.rotation_deg.max() < 0.2, e.rotation_deg


def test_recovers_known_cameras(scene_session, detections):
    _, board, scene = scene_session
    cal = calibrate_rig(detections, board)
    _check_against_truth(cal.rig, scene.rig)
    # metric scale comes from the board alone: inter-camera distances without any alignment
    d_est = np.linalg.norm(cal.rig.centers[:, None] - cal.rig.centers[None], axis=-1)
    d_true = np.linalg.norm(scene.rig.centers[:, None] - scene.rig.centers[None], axis=-1)
    assert np.allclose(d_est, d_true, atol=0.005)
    assert np.nanmean(cal.errors) < 0.3


def test_oblique_views_join_only_when_the_rig_needs_them(scene_session, detections):
    """With a view-angle limit that leaves no frame shared by all camera pairs, views up to max_pose_angle
    keep the rig connected; with both limits tight, the cameras fall apart into groups."""
    _, board, scene = scene_session
    cal = calibrate_rig(detections, board, max_view_angle=12.0, max_pose_angle=70.0)
    assert compare_rigs(cal.rig, scene.rig).centre_m.max() < 0.01
    with pytest.raises(CalibrationError, match="never saw the board at the same time"):
        calibrate_rig(detections, board, max_view_angle=12.0, max_pose_angle=12.0)


def test_cli_origin_frame_puts_the_board_at_the_origin(scene_session):
    root, board, scene = scene_session
    frame = 3
    res = CliRunner().invoke(app, ["calibrate", str(root), "--origin-frame", str(frame)])
    assert res.exit_code == 0, res.output
    rig = load_rig(root / "calibration.toml")
    assert (root / "output" / "calibration_top_view.png").stat().st_size > 1000
    # truth in the board-at-frame world: X = A R_b^T (X_true - t_b), A turns the board's face normal to +y
    Q = BOARD_TO_WORLD @ scene.R_boards[frame].T
    R_truth = np.stack([c.R for c in scene.rig]) @ Q.T
    C_truth = (scene.rig.centers - scene.t_boards[frame]) @ Q.T
    assert np.linalg.norm(rig.centers - C_truth, axis=1).max() < 0.01
    for c, Rt in zip(rig, R_truth):
        assert np.degrees(np.linalg.norm(Rotation.from_matrix(c.R.T @ Rt).as_rotvec())) < 0.2
    # cameras face the board's printed side: they sit at positive y in that world
    assert (rig.centers[:, 1] > 0).all()


def test_cli_calibrate_with_wrong_board_fails_clearly(scene_session):
    root, _, _ = scene_session
    res = CliRunner().invoke(app, ["calibrate", str(root), "--rows", "4", "--cols", "6", "-o", str(root / "x.toml")])
    assert res.exit_code == 2
    assert "saw the board" in res.output and "check the board settings" in res.output


def test_camera_that_never_sees_the_board(scene_session, detections):
    _, board, _ = scene_session
    d = detections[2]
    blind = BoardDetections(d.camera, d.source, d.image_size, d.frames[:0], d.corners[:0], d.frames_read)
    with pytest.raises(CalibrationError, match=f"camera {d.camera} saw the board usably in 0 frames"):
        calibrate_rig([*detections[:2], blind, detections[3]], board)


def test_disconnected_cameras(scene_session, detections):
    _, board, _ = scene_session
    split = []
    for i, d in enumerate(detections):  # cameras 1-2 keep even frames, 3-4 odd ones: no common frame
        keep = d.frames % 2 == (i // 2)
        split.append(BoardDetections(d.camera, d.source, d.image_size, d.frames[keep], d.corners[keep], d.frames_read))
    with pytest.raises(CalibrationError, match="never saw the board at the same time"):
        calibrate_rig(split, board)
    # one shared frame is no link either (aniposelib's pose averaging would crash on it)
    d = detections[0]
    odd = int(d.frames[d.frames % 2 == 1][0])
    keep = (d.frames % 2 == 0) | (d.frames == odd)
    split[0] = BoardDetections(d.camera, d.source, d.image_size, d.frames[keep], d.corners[keep], d.frames_read)
    with pytest.raises(CalibrationError, match="never saw the board at the same time in 2"):
        calibrate_rig(split, board)


def test_mismatched_resolution_and_unreadable_video(scene_session, tmp_path):
    root, _, scene = scene_session
    session = tmp_path / "s"
    (session / "calibration").mkdir(parents=True)
    (session / "videos").mkdir()
    for cam in scene.rig.names:
        (session / "calibration" / cam).symlink_to(root / "calibration" / cam)
        w = cv2.VideoWriter(str(session / "videos" / f"{cam}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
        for _ in range(3):
            w.write(np.zeros((240, 320, 3), np.uint8))
        w.release()
    res = CliRunner().invoke(app, ["calibrate", str(session)])
    assert res.exit_code == 2
    assert "records 320x240" in res.output and "recording resolution" in res.output
    (session / "videos" / "cam1.avi").write_bytes(b"not a video")
    res = CliRunner().invoke(app, ["calibrate", str(session)])
    assert res.exit_code == 2 and "unreadable video" in res.output
