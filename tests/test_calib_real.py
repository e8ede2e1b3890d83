"""Real checkerboard photos (4x7 inner corners, 60 mm) against the lab's Qualisys calibration of the same cameras."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.calib.board import Board, detect_footage
from mocap.calib.calibrate import calibrate_intrinsics
from mocap.calib.qualisys import read_qca
from mocap.config import BoardConfig


def test_checkerboard_intrinsics_agree_with_qualisys(pose2sim_dir):
    calib = pose2sim_dir / "calibration"
    qualisys = read_qca(calib / "Calib.qca.txt")
    board = Board(BoardConfig(type="checkerboard", corners="4x7", square=0.06))
    for cam in qualisys:
        det = detect_footage(board, cam.name, calib / "intrinsics" / f"int_{cam.name}_img")
        assert det.image_size == cam.image_size
        intr = calibrate_intrinsics(det, board)
        assert intr.rms < 2.0
        # measured here: focal within 1 %, principal point within 50 px (7 photos constrain it poorly), k1 within 0.02
        assert np.abs(np.diag(intr.K)[:2] / np.diag(cam.K)[:2] - 1).max() < 0.015, cam.name
        assert np.abs(intr.K[:2, 2] - cam.K[:2, 2]).max() < 60, cam.name
        assert abs(intr.dist[0] - cam.dist[0]) < 0.02, cam.name


@pytest.mark.shared
def test_qualisys_distortion_is_read_unscaled(pose2sim_dir):
    """Issue 17: mocap reads cam01's k1 as -0.0462, Pose2Sim divides the coefficients by 64 (-0.00072).
    OpenCV's calibration of the checkerboard photos finds k1 -0.051, k2 0.146 (measured): the file's
    coefficients are OpenCV's as they stand, so mocap's reading is the right one."""
    calib = pose2sim_dir / "calibration"
    cam = read_qca(calib / "Calib.qca.txt")[0]
    assert cam.name == "cam01" and abs(cam.dist[0] - -0.046183) < 1e-6
    board = Board(BoardConfig(type="checkerboard", corners="4x7", square=0.06))
    intr = calibrate_intrinsics(detect_footage(board, cam.name, calib / "intrinsics" / "int_cam01_img"), board)
    for i in (0, 1):  # k1, k2
        unscaled, divided = abs(intr.dist[i] - cam.dist[i]), abs(intr.dist[i] - cam.dist[i] / 64)
        assert unscaled < 0.25 * divided, (i, intr.dist[i], cam.dist[i])
