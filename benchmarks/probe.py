"""Probing long takes: four 10-minute 60 fps videos (36,000 frames each) through `Session.load` and `mocap info`.

Target (issue 20): under 2 s for the four. The videos are small (96x64 H.264, made once in a temporary folder)
because probing reads the container's header, whose size grows with the frame count, not the picture's.
The exact count (decoding to the last frame, what `Session.load` did before) is measured beside it.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/probe.py [--frames 36000] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_videos(folder: Path, frames: int, views: int = 4) -> None:
    from mocap.io.video import probe
    from mocap.io.video_writer import VideoWriter

    (folder / "videos").mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None].repeat(64, 0).repeat(3, 2)
    for v in range(views):
        path = folder / "videos" / f"cam{v + 1}.mp4"
        if path.is_file() and probe(path, exact=False).frames == frames:
            continue
        with VideoWriter(path, (96, 64), 60.0, preset="ultrafast") as w:
            for f in range(frames):
                w.write(np.roll(ramp, f % 96, axis=1))


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=36_000)
    ap.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "mocap_bench_probe")
    args = ap.parse_args()
    make_videos(args.folder, args.frames)
    from mocap.io.video import probe
    from mocap.session import Session

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    w, c = time.perf_counter(), cpu()
    s = Session.load(args.folder)
    load_wall, load_cpu = time.perf_counter() - w, cpu() - c
    assert s.num_frames == args.frames, s.num_frames
    print(f"Session.load, 4 x {args.frames} frames: {load_wall:.2f} s wall, {load_cpu:.2f} s CPU (target < 2 s)")
    w, c = time.perf_counter(), cpu()
    exact = probe(s.views[0].info.path, exact=True)
    exact_wall = time.perf_counter() - w
    assert exact.frames == args.frames
    print(f"exact count of one video (seek to the last frame, decode its GOP): {exact_wall:.2f} s wall, "
          f"{cpu() - c:.2f} s CPU")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mocap.cli", "info", str(args.folder)], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    info_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"mocap info (whole command, start-up included): {time.perf_counter() - w:.2f} s wall, {info_cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
