"""Detection speed and quality on the Pose2Sim demo (4 views x 100 frames, 1080x1920 portrait, 60 fps).

Prints: frames per second of one view in one process (with and without the downscale MediaPipe is fed),
the wall time of the 4 views in parallel processes against one view alone (target: <= 2.2x on 2 cores),
then per view the detection rate and the reprojection error of keypoints triangulated from all views
with the demo's Qualisys calibration.

    PYTHONPATH=$PWD python benchmarks/detection.py [--frames 100] [--skip-speed]

The machine's load average is printed before and after: timings only mean something on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mocap.detect.blazepose import DetectorConfig, detect_video  # noqa: E402
from mocap.detect.consistency import reprojection_errors  # noqa: E402
from mocap.detect.parallel import detect_views, usable_cores  # noqa: E402
from mocap.io.keypoints_h5 import Keypoints2D  # noqa: E402
from mocap.io.video import read_frames  # noqa: E402
from tests.qca_reader import read_qca  # noqa: E402  (until mocap.calib reads Qualisys files)

DATA = REPO.parent / "shared" / "data" / "pose2sim_demo_single"
CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def single_view(path: Path, frames: int, config: DetectorConfig) -> tuple[float, float]:
    """(wall seconds for the whole call, steady frames per second after the first frame)."""
    stamps = []
    t0 = time.perf_counter()
    detect_video(path, "cam", config, frames, lambda done, total: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    return wall, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def stack(views: dict[str, Keypoints2D]) -> Keypoints2D:
    per = [views[c] for c in CAMERAS]
    return Keypoints2D(CAMERAS, np.concatenate([v.keypoints for v in per], 1), np.concatenate([v.boxes for v in per], 1),
                       np.concatenate([v.detected for v in per], 1), np.concatenate([v.image_sizes for v in per]),
                       per[0].format, per[0].names, per[0].fps)


def quality(kp: Keypoints2D, rig, max_side) -> None:
    err = reprojection_errors(kp.keypoints, rig, min_confidence=0.5)
    print(f"quality (max_side={max_side}, keypoints with confidence >= 0.5):")
    for v, cam in enumerate(CAMERAS):
        e = err[:, v]
        print(f"  {cam}: detected in {kp.detected[:, v].mean():.1%} of frames; reprojection error median "
              f"{np.nanmedian(e):.1f} px, 90th percentile {np.nanpercentile(e, 90):.1f} px, "
              f"{np.isfinite(e).mean():.0%} of keypoints used")
    print(f"  all views: median {np.nanmedian(err):.1f} px, 90th percentile {np.nanpercentile(err, 90):.1f} px, "
          f"mean {np.nanmean(err):.1f} px")
    bad = np.nonzero(np.nanmedian(err, axis=(1, 2)) > 40)[0]
    print(f"  frames whose median error exceeds 40 px: {bad.tolist()}")
    for v, cam in enumerate(CAMERAS):
        keep = [u for u in range(4) if u != v]
        e3 = reprojection_errors(kp.keypoints[:, keep], rig.subset([CAMERAS[u] for u in keep]), 0.5)
        print(f"  without {cam}: median {np.nanmedian(e3):.1f} px"
              + (f", on those frames {np.nanmedian(e3[bad]):.1f} px" if len(bad) else ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found")
    sources = {c: DATA / "videos" / f"{c}.mp4" for c in CAMERAS}
    F = args.frames
    print(f"load average before: {load()}; usable cores: {usable_cores()}; {F} frames per view")

    if not args.skip_speed:
        t0 = time.perf_counter()
        n = sum(1 for _ in read_frames(sources["cam01"], 0, F))
        print(f"decode only (OpenCV, cam01 1080x1920): {n / (time.perf_counter() - t0):.1f} fps")
        single = {}
        for max_side in (960, None):
            wall, steady = single_view(sources["cam01"], F, DetectorConfig(max_side=max_side))
            single[max_side] = wall
            print(f"one view, one process, max_side={max_side}: {F / wall:.1f} fps overall "
                  f"({wall:.2f} s incl. start-up), {steady:.1f} fps steady")
        for workers in (2, 4):
            t0 = time.perf_counter()
            detect_views(sources, DetectorConfig(), stop=F, workers=workers)
            wall = time.perf_counter() - t0
            print(f"4 views, {workers} processes: {wall:.2f} s = {wall / single[960]:.2f}x one view "
                  f"({4 * F / wall:.1f} frames/s in total)")

    rig = read_qca(DATA / "calibration" / "Calib.qca.txt").subset(CAMERAS)
    for max_side in (960, None):
        kp = stack(detect_views(sources, DetectorConfig(max_side=max_side), stop=F))
        quality(kp, rig, max_side)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
