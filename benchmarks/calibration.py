"""Calibration speed and accuracy: 4 cameras x 300 frames of synthetic 1080p ChArUco footage.

    PYTHONPATH=. python benchmarks/calibration.py [--frames 300] [--workdir /tmp/mocap_calib_bench]

Generates the videos once (mp4, rendered with known cameras; kept in --workdir), then times what
`mocap calibrate` does: board detection in every frame of every video, first intrinsics on up to 60 frames
per camera (evenly spread), and the joint bundle adjustment over all frames. Prints timings and the error
against the known cameras. Target: under 2 minutes for detection + calibration.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mocap.calib.board import Board, detect_footage
from mocap.calib.calibrate import calibrate_rig
from mocap.calib.compare import compare_rigs
from mocap.calib.synthetic import BoardRenderer, make_scene
from mocap.config import BoardConfig

BOARD = BoardConfig(type="charuco", rows=7, cols=10, square=0.06, marker=0.045, dict="4x4_50")


def generate(board: Board, workdir: Path, frames: int):
    import cv2

    scene = make_scene(board, num_poses=frames, image_size=(1920, 1080), focal=1400.0, radius=2.2, spread=0.5,
                       tilt=40, arc=60, seed=7)
    rng = np.random.default_rng(7)
    for cam in scene.rig:
        path = workdir / f"{cam.name}.mp4"
        if path.is_file():
            continue
        renderer = BoardRenderer(board, cam, px_per_square=60, supersample=1)
        tmp = path.with_suffix(".tmp.mp4")
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 30, cam.image_size)
        for R, t in zip(scene.R_boards, scene.t_boards):
            writer.write(cv2.cvtColor(renderer.render(R, t, rng, blur=0.8), cv2.COLOR_GRAY2BGR))
        writer.release()
        tmp.rename(path)
    return scene


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mocap_calib_bench"))
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    board = Board(BOARD)
    t0 = time.perf_counter()
    scene = generate(board, a.workdir, a.frames)
    print(f"footage: {len(scene.rig)} cameras x {a.frames} frames 1920x1080 in {a.workdir} "
          f"({time.perf_counter() - t0:.1f} s to generate or find)")

    t0 = time.perf_counter()
    dets = [detect_footage(board, cam.name, a.workdir / f"{cam.name}.mp4") for cam in scene.rig]
    t_detect = time.perf_counter() - t0
    t0 = time.perf_counter()
    cal = calibrate_rig(dets, board)
    t_calib = time.perf_counter() - t0
    print(f"detection: {t_detect:.1f} s ({t_detect / sum(d.frames_read for d in dets) * 1000:.1f} ms/frame); "
          f"boards found per camera: {[len(d) for d in dets]}")
    print(f"calibration (intrinsics on <= 60 frames/camera + joint bundle adjustment on all): {t_calib:.1f} s; "
          f"{cal.outliers} outlier corners dropped")
    print(f"total: {t_detect + t_calib:.1f} s (target < 120 s)")

    e = compare_rigs(cal.rig, scene.rig)
    for c, name in enumerate(e.cameras):
        print(f"  {name}: focal {100 * e.focal[c]:.3f} %, principal point {e.principal_px[c]:.2f} px, "
              f"centre {1000 * e.centre_m[c]:.2f} mm, rotation {e.rotation_deg[c]:.3f} deg, "
              f"reprojection mean {np.nanmean(cal.errors[cal.rig.names.index(name)]):.3f} px")


if __name__ == "__main__":
    main()
