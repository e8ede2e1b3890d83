"""Overlay videos and the report against detection, on the bundled real sample (4 x 100 frames, 1080x1920).

Targets (issue 20): `mocap viz overlay` (all views + grid) at most 0.3x the CPU of `mocap detect` on the same
session; `mocap report` at most 3 s CPU. Every command runs as a whole process (start-up included), one after
the other in this run, and its CPU (user + system of the process and its threads) is read from the kernel.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/viz.py [--sample examples/pose2sim_demo_single] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of ``mocap ARGS`` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mocap.cli", *args], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=Path, default=ROOT / "examples" / "pose2sim_demo_single")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mocap_bench_viz_"))
    session = work / "session"
    if not session.exists():
        shutil.copytree(args.sample, session)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
    timed(["calibrate", "import", str(session / "calibration" / "Calib.qca.txt"), "--from", "qualisys",
           "-o", str(session / "calibration.toml")])
    steps = {"detect": ["detect", str(session), "--force"], "run": ["run", str(session)],
             "overlay": ["viz", "overlay", str(session)], "report": ["report", str(session)],
             "report again": ["report", str(session)]}
    figures = {}
    for name, cmd in steps.items():
        figures[name] = timed(cmd)
        print(f"{name:13s} {figures[name][0]:7.1f} s wall {figures[name][1]:7.1f} s CPU  (load {os.getloadavg()[0]:.1f})")
    detect_cpu = figures["detect"][1]
    print(f"overlay / detect CPU: {figures['overlay'][1] / detect_cpu:.2f} (target <= 0.3)")
    print(f"report CPU: {figures['report'][1]:.1f} s (target <= 3 s); {figures['report'][1] / detect_cpu:.2f}x detect")
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
