"""Start-up: wall and CPU time of `mocap --help` (and of each command's --help) against `python -c pass`.

Target (issue 20): `mocap --help` under 0.5 s wall. Each figure is the best of ``--repeat`` runs in this process's
run, so the interpreter's own start-up (``python -c pass``) is measured beside it under the same load.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/startup.py [--repeat 5] [--commands]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

COMMANDS = ("info", "calibrate", "detect", "shape", "run", "export", "viz", "report", "eval", "batch", "synth",
            "demo", "body")


def best(argv: list[str], repeat: int) -> tuple[float, float]:
    """Smallest wall and CPU (user + system) seconds of ``repeat`` runs of ``argv``."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--commands", action="store_true", help="also time `mocap COMMAND --help` for every command")
    args = ap.parse_args()
    py = [sys.executable]
    rows = [("python -c pass", py + ["-c", "pass"]), ("mocap --help", py + ["-m", "mocap.cli", "--help"])]
    if args.commands:
        rows += [(f"mocap {c} --help", py + ["-m", "mocap.cli", c, "--help"]) for c in COMMANDS]
    print(f"load average {os.getloadavg()[0]:.2f}; best of {args.repeat}")
    base = None
    for label, argv in rows:
        wall, cpu = best(argv, args.repeat)
        base = base if base is not None else wall
        print(f"{label:<24} wall {wall:6.3f} s  cpu {cpu:6.3f} s  ({wall / base:5.1f}x python -c pass)", flush=True)


if __name__ == "__main__":
    main()
