"""Detection speed and quality on the Pose2Sim demo (4 views x 100 frames, 1080x1920 portrait, 60 fps).

Prints: frames per second of one view in one process,
the wall time of the 4 views in parallel processes against one view alone (target: <= 2.2x on 2 cores),
then per view the detection rate and the reprojection error of keypoints triangulated from all views
with the demo's Qualisys calibration.

    PYTHONPATH=$PWD python benchmarks/detection.py [--frames 100] [--skip-speed]

The machine's load average is printed before and after: timings only mean something on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import resource
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
from mocap.calib.qualisys import read_qca  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "pose2sim_demo_single"
CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def single_view(path: Path, frames: int, config: DetectorConfig) -> tuple[float, float, float]:
    """(wall seconds for the whole call, CPU seconds of all its threads, steady frames per second after the first frame)."""
    stamps = []
    t0, c0 = time.perf_counter(), time.process_time()
    detect_video(path, "cam", config, frames, lambda done, total: stamps.append(time.perf_counter()))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, once the pool has reaped them
    return ru.ru_utime + ru.ru_stime


def stack(views: dict[str, Keypoints2D]) -> Keypoints2D:
    per = [views[c] for c in CAMERAS]
    return Keypoints2D(CAMERAS, np.concatenate([v.keypoints for v in per], 1), np.concatenate([v.boxes for v in per], 1),
                       np.concatenate([v.detected for v in per], 1), np.concatenate([v.image_sizes for v in per]),
                       per[0].format, per[0].names, per[0].fps)


def quality(kp: Keypoints2D, rig) -> None:
    err = reprojection_errors(kp.keypoints, rig, min_confidence=0.5)
    print("quality (keypoints with confidence >= 0.5):")
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
        t0 = time.perf_counter()
        single_view(sources["cam01"], 2, DetectorConfig())  # imports mediapipe, builds a graph once
        print(f"start-up (imports, first graph, 2 frames): {time.perf_counter() - t0:.2f} s")
        wall1, cpu1, steady = single_view(sources["cam01"], F, DetectorConfig())
        print(f"one view, one process: {F / wall1:.1f} fps wall ({wall1:.2f} s, {steady:.1f} fps after the first "
              f"frame); CPU {cpu1:.2f} s = {F / cpu1:.1f} frames per CPU-second")
        for workers in (2, 4):
            t0, c0 = time.perf_counter(), children_cpu()
            detect_views(sources, DetectorConfig(), stop=F, workers=workers)
            wall, cpu = time.perf_counter() - t0, children_cpu() - c0
            print(f"4 views, {workers} processes (start-up included): wall {wall:.2f} s = {wall / wall1:.2f}x one view; "
                  f"CPU {cpu:.2f} s = {cpu / cpu1:.2f}x one view's CPU; on 2 idle cores at least {cpu / 2:.2f} s")

    rig = read_qca(DATA / "calibration" / "Calib.qca.txt").subset(CAMERAS)
    quality(stack(detect_views(sources, DetectorConfig(), stop=F)), rig)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
