"""Long takes: `mocap synth` and `mocap run` on 18,000 frames x 4 views (5 minutes at 60 fps), whole commands.

Targets (issue 20): `mocap run` at most 7 CPU ms per frame and peak memory under 600 MB; `mocap synth` under
1.5 GB. CPU (user + system) and peak resident memory come from the kernel for each command's process (wait4),
so the machine's load changes wall time only, which is printed with the load average beside it.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/long_take.py [--frames 18000] [--cameras 4] [--folder DIR]

With ``--folder``, an existing session there is fitted again instead of synthesised anew.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(label: str, args: list[str], frames: int) -> None:
    """Run ``mocap ARGS`` and print its wall time, CPU per frame and peak memory."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mocap.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"mocap {' '.join(args)} failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    print(f"{label:<8} {frames:6d} frames  wall {wall:7.1f} s  CPU {cpu:7.1f} s = {1e3 * cpu / frames:6.2f} ms/frame  "
          f"peak {usage.ru_maxrss / 1024:7.0f} MB  (load average {os.getloadavg()[0]:.2f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=18_000)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--folder", type=Path, default=None, help="session folder to keep (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.folder or Path(tmp) / "long"
        if not (root / "output" / "keypoints2d.h5").is_file():
            measure("synth", ["synth", str(root), "--frames", str(args.frames), "--cameras", str(args.cameras)],
                    args.frames)
        measure("run", ["run", str(root)], args.frames)


if __name__ == "__main__":
    main()
