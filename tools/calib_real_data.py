"""Real-data figures of `mocap calibrate` (issue 5): intrinsics calibrated from the Pose2Sim demo's checkerboard
photos against the lab's Qualisys calibration of the same cameras, and where the imported Qualisys cameras stand.

    PYTHONPATH=. python tools/calib_real_data.py ../shared/data/pose2sim_demo_single

The same comparisons, with thresholds, are tests/test_calib_real.py and tests/test_calib_formats.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mocap.calib.board import Board, detect_footage
from mocap.calib.calibrate import calibrate_intrinsics
from mocap.calib.qualisys import read_qca
from mocap.config import BoardConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    a = ap.parse_args()
    calib = a.data / "calibration"
    qualisys = read_qca(calib / "Calib.qca.txt")
    board = Board(BoardConfig(type="checkerboard", corners="4x7", square=0.06))
    print("intrinsics: checkerboard photos (ours) vs Qualisys")
    for cam in qualisys:
        det = detect_footage(board, cam.name, calib / "intrinsics" / f"int_{cam.name}_img")
        intr = calibrate_intrinsics(det, board)
        f_ours, f_q = np.diag(intr.K)[:2], np.diag(cam.K)[:2]
        print(f"  {cam.name}: {len(det)}/{det.frames_read} photos, {intr.frames_used} used, RMS {intr.rms:.2f} px | "
              f"fx {f_ours[0]:.1f} vs {f_q[0]:.1f}, fy {f_ours[1]:.1f} vs {f_q[1]:.1f} "
              f"({100 * np.abs(f_ours / f_q - 1).max():.2f} %) | "
              f"cx, cy {intr.K[0, 2]:.1f}, {intr.K[1, 2]:.1f} vs {cam.K[0, 2]:.1f}, {cam.K[1, 2]:.1f} | "
              f"k1 {intr.dist[0]:+.4f} vs {cam.dist[0]:+.4f}, k2 {intr.dist[1]:+.4f} vs {cam.dist[1]:+.4f}, "
              f"p1 {intr.dist[2]:+.5f} vs {cam.dist[2]:+.5f}, p2 {intr.dist[3]:+.5f} vs {cam.dist[3]:+.5f}")
    print("Qualisys rig imported (metres, y up; the lab origin is on the treadmill)")
    for cam in qualisys:
        C = cam.center
        to_origin = -C / np.linalg.norm(C)
        off_axis = np.degrees(np.arccos(np.clip(cam.R[2] @ to_origin, -1, 1)))
        u, v = cam.project(np.zeros((1, 3)))[0]
        print(f"  {cam.name}: centre {C[0]:+.2f}, {C[1]:+.2f}, {C[2]:+.2f}; {np.linalg.norm(C):.2f} m from the origin, "
              f"{C[1]:.2f} m high; optical axis {off_axis:.1f} deg off the origin, which projects to "
              f"({u:.0f}, {v:.0f}) in {cam.image_size[0]}x{cam.image_size[1]}")


if __name__ == "__main__":
    main()
