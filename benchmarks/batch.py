"""`mocap batch` throughput: 8 synthetic takes (6 keypoint-only, 2 rendered; 4 cameras) run one after another,
on 2 local workers, on a local Ray, and on a 2-node Ray cluster simulated on this machine.

    PYTHONPATH=. python benchmarks/batch.py [--frames 30] [--rendered-frames 16] [--steps detect,run,export:bvh]
                                            [--workdir /tmp/mocap_batch_bench] [--repeats 1] [--skip-cluster]

Every run uses ``--force`` on the same sessions, so every step runs each time. Prints each run's wall time and
throughput (sessions per minute) against the one-after-another run, and checks the cluster's outputs against
the 2-worker run's: every array of every ``smpl.npz`` (metadata included) must be bit-identical.

The machine is shared, so each run also prints the CPU seconds its own processes used and how many cores they
got (CPU / wall) next to how many the whole machine had busy (``/proc/stat``): a throughput ratio is the ratio
of the cores each run got times the ratio of the CPU seconds they needed, and only the second is the batch's
doing. ``--repeats N`` runs the four local configurations N times, interleaved (so a change in the machine's
load hits each alike), and keeps each one's fastest run.
The cluster: ``ray start --head`` and ``ray start --address`` with 1 CPU each, their own ports and temp
folders, stopped at the end by the ids of the processes they started (never ``ray stop``, which would stop
every Ray on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HEAD_PORT = 6391


def make_takes(root: Path, frames: int, rendered_frames: int) -> list[Path]:
    from mocap.synth.session import SynthConfig, synthesize

    takes = []
    for i in range(8):
        path = root / f"take{i}"
        render = i >= 6
        if not path.is_dir():
            cfg = SynthConfig(cameras=4, frames=rendered_frames if render else frames, seed=i, render=render,
                              board_frames=8, image_scale=0.5, motion="mixed")
            synthesize(path, cfg)
            if render:  # detected from the rendered footage, as the demo does; the synthetic keypoints kept aside
                (path / "output" / "keypoints2d.h5").rename(path / "output" / "keypoints2d_synthetic.h5")
        takes.append(path)
    return takes


#: ``--per-step`` is the benchmark's own flag: one Ray task per step, through the Python API (``ray_per``).
_PER_STEP = """import sys
from mocap.batch.runner import run_batch
a = sys.argv[1:]
takes, opts = a[:a.index("--steps")], a[a.index("--steps"):]
res = run_batch(takes, opts[1], workers=2, ray=True, force=True, summary=opts[opts.index("--summary") + 1], ray_per="step")
sys.exit(res.exit_code)
"""


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # of every process the run started (Ray's daemons and workers included)
    step_cpu_s: float  # of the steps alone, as batch_summary.json records them
    busy_cores: float  # the whole machine's, over the run

    @property
    def own_cores(self) -> float:
        return self.cpu_s / self.wall_s

    def line(self, name: str, sessions: int) -> str:
        return (f"{name:<34} {self.wall_s:6.1f} s  {sessions / self.wall_s * 60:5.1f} sessions/min  "
                f"CPU {self.cpu_s:5.1f} s (steps {self.step_cpu_s:5.1f} s) = {self.own_cores:.2f} cores; "
                f"machine busy {self.busy_cores:.2f} of {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far, from the first line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class TreeCpu(threading.Thread):
    """CPU seconds of the processes carrying ``MOCAP_BENCH_RUN=tag``, read from /proc every 0.2 s: Ray's daemons
    and workers are not children the benchmark waits for, so rusage misses them. A process's last 0.2 s are
    missed, a few per cent of a run."""

    def __init__(self, tag: str):
        super().__init__(daemon=True)
        self.tag, self.seen, self.done = tag, {}, threading.Event()

    def run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self.done.wait(0.2):
            for pid in _tagged(self.tag, "MOCAP_BENCH_RUN"):
                try:
                    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    self.seen[pid] = (int(f[11]) + int(f[12])) / tick
                except (OSError, IndexError, ValueError):
                    continue

    def stop(self) -> float:
        self.done.set()
        self.join()
        return sum(self.seen.values())


def batch(args: list[str], env: dict, tag: str) -> Run:
    """``mocap batch ARGS`` in a fresh process (as a user runs it): its wall time, CPU time and the machine's load."""
    start, (busy, total) = time.perf_counter(), _busy_jiffies()
    tree = TreeCpu(tag)
    tree.start()
    cmd = ["-c", _PER_STEP, *args] if "--per-step" in args else ["-m", "mocap.cli", "batch", *args]
    res = subprocess.run([sys.executable, *cmd], env={**env, "MOCAP_BENCH_RUN": tag}, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, tree.stop()
    busy2, total2 = _busy_jiffies()
    if res.returncode != 0:
        sys.exit(f"mocap batch {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    summary = json.loads(Path(args[args.index("--summary") + 1]).with_suffix(".json").read_text())
    steps = sum(st["cpu_s"] for s in summary["sessions"] for st in s["steps"])
    return Run(wall, cpu, steps, (busy2 - busy) / max(total2 - total, 1) * (os.cpu_count() or 1))


def fits(takes: list[Path]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for t in takes:
        with np.load(t / "output" / "smpl.npz") as f:
            out[t.name] = {k: f[k] for k in f.files}
    return out


def _same(x: np.ndarray, y: np.ndarray | None) -> bool:
    """Bit for bit, NaN (a view not used in a frame) equal to NaN at the same place."""
    return y is not None and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")


def compare(a: dict, b: dict) -> list[str]:
    return [f"{take}/{k}" for take in a for k in a[take] if not _same(a[take][k], b[take].get(k))]


def per_frame_costs(summary: Path) -> None:
    """CPU seconds per frame of each step, from a run's batch_summary.json, keypoint-only and rendered apart."""
    data = json.loads(summary.with_suffix(".json").read_text())
    for kind, names in (("keypoint-only", {f"take{i}" for i in range(6)}), ("rendered", {"take6", "take7"})):
        sessions = [s for s in data["sessions"] if Path(s["session"]).name in names]
        frames = sum(s["frames"] or 0 for s in sessions)
        costs = {}
        for s in sessions:
            for st in s["steps"]:
                costs.setdefault(st["step"], [0.0, 0.0])
                costs[st["step"]][0] += st["cpu_s"]
                costs[st["step"]][1] += st["wall_s"]
        print(f"  {kind} ({len(sessions)} takes, {frames} frames, 4 views): " + ", ".join(
            f"{step} {1000 * cpu / frames:.0f} ms CPU / {1000 * wall / frames:.0f} ms wall per frame"
            for step, (cpu, wall) in costs.items()))


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def start_cluster(tmp: Path, env: dict) -> None:
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 1024 ** 2), "--disable-usage-stats"]
    subprocess.run([_ray_bin(), "start", "--head", "--port", str(HEAD_PORT), "--temp-dir", str(tmp / "head"),
                    "--include-dashboard", "false", *common],
                   env=env, check=True, capture_output=True)
    subprocess.run([_ray_bin(), "start", "--address", f"127.0.0.1:{HEAD_PORT}", "--temp-dir", str(tmp / "node"),
                    *common], env=env, check=True, capture_output=True)


def _tagged(tag: str, var: str = "MOCAP_BENCH_CLUSTER") -> list[int]:
    """Processes whose environment carries ``var=tag``: by default, those the cluster's ``ray start`` made."""
    needle = f"{var}={tag}".encode()
    pids = []
    for p in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in p.read_bytes().split(b"\0"):
                pids.append(int(p.parent.name))
        except (OSError, ValueError):
            continue
    return [pid for pid in pids if pid != os.getpid()]


def stop_cluster(tag: str) -> int:
    """SIGTERM the cluster's processes, SIGKILL those still there after 10 s; returns how many there were."""
    pids = _tagged(tag)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while time.time() < deadline and _tagged(tag):
            time.sleep(0.5)
    return len(pids)


def report_ratios(runs: dict[str, Run]) -> None:
    """Throughput ratios of the fastest runs, each split into cores got x CPU seconds needed."""
    base, pool, ray, per_step = (runs[n] for n in ("one after another (--workers 1)", "--workers 2",
                                                  "--ray (local, 2 CPUs)", "--ray, one task per step"))

    def ratio(a: Run, b: Run, what: str, target: str) -> None:
        print(f"{what}: {b.wall_s / a.wall_s:.2f}x throughput (target {target}) = {a.own_cores / b.own_cores:.2f}x the "
              f"cores got x {b.cpu_s / a.cpu_s:.2f} (the CPU seconds' inverse ratio: 1 when no CPU is spent on more)")

    ratio(pool, base, "--workers 2 vs one after another", ">= 1.6x")
    ratio(ray, pool, "--ray local vs --workers 2", "within 15 %, >= 0.85x")
    ratio(per_step, ray, "one task per step vs per session", "none")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30, help="Frames of each keypoint-only take.")
    ap.add_argument("--rendered-frames", type=int, default=16, help="Frames of each rendered take.")
    ap.add_argument("--steps", default="detect,run,export:bvh")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mocap_batch_bench"))
    ap.add_argument("--repeats", type=int, default=1, help="Rounds of the local runs; each one's fastest is kept.")
    ap.add_argument("--skip-cluster", action="store_true")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "RAY_AUTH_MODE": "disabled"}  # the simulated cluster's nodes join without a token
    t0 = time.perf_counter()
    takes = make_takes(args.workdir / "takes", args.frames, args.rendered_frames)
    print(f"8 takes ready in {time.perf_counter() - t0:.0f} s under {args.workdir / 'takes'}; load average "
          f"{os.getloadavg()[0]:.1f} before the runs")
    common = [*map(str, takes), "--steps", args.steps, "--force", "--summary"]
    configs = {"one after another (--workers 1)": ["--workers", "1"], "--workers 2": ["--workers", "2"],
               "--ray (local, 2 CPUs)": ["--workers", "2", "--ray"],
               "--ray, one task per step": ["--workers", "2", "--ray", "--per-step"]}
    runs: dict[str, Run] = {}
    for rep in range(args.repeats):
        for k, (name, extra) in enumerate(configs.items()):
            run = batch([*common, str(args.workdir / f"summary_{k}.csv"), *extra], env, f"{os.getpid()}.{rep}.{k}")
            print(run.line(name, len(takes)), flush=True)
            if name not in runs or run.wall_s < runs[name].wall_s:
                runs[name] = run
            if rep == 0 and k == 0:
                local = fits(takes)  # what every other run must reproduce bit for bit
                per_frame_costs(args.workdir / "summary_0.csv")
            elif diff := compare(local, fits(takes)):
                sys.exit(f"{name}: outputs differ from the one-after-another run's: {diff}")
    report_ratios(runs)
    print("outputs of every local run vs one after another: every smpl.npz array bit-identical")
    if args.skip_cluster:
        return
    tmp = Path(f"/tmp/mocap_ray_bench_{os.getpid()}")
    cluster_env = {**env, "MOCAP_BENCH_CLUSTER": str(os.getpid())}
    try:
        start_cluster(tmp, cluster_env)
        run = batch([*common, str(args.workdir / "summary_cluster.csv"), "--ray", f"127.0.0.1:{HEAD_PORT}"], env,
                    f"{os.getpid()}.cluster")  # the cluster's own daemons, started before, are not counted
        print(run.line("2-node Ray cluster (1 CPU each)", len(takes)))
        diff = compare(local, fits(takes))
        print(f"cluster outputs vs one after another: {'every smpl.npz array bit-identical' if not diff else diff}")
    finally:
        print(f"stopped the cluster's {stop_cluster(str(os.getpid()))} processes")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
