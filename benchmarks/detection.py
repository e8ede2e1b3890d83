"""Detection speed and quality on the Pose2Sim demo (4 views x 100 frames, 1080x1920 portrait, 60 fps).

Prints: frames per second of each view detected alone (target >= 35), the wall time of the 4 views
detected at once (2 at a time in 2 threads, the default on 2 cores, and all 4 at once) against the mean time of one view alone
(target: <= 2.2x on 2 cores), each the median of interleaved repeats, the same ratio for whole
`mocap detect` commands (start-up included on both sides),
then per view the detection rate and the reprojection error of keypoints triangulated from all views
with the demo's Qualisys calibration, for the default detector (every person; its most confident person
per view) and the one-person tracker it replaced (``max_people=1``).

``--people``: the cost of finding everyone. The 1-person sample against Pose2Sim's 2-person demo
(same cameras, same frame size), 4 views each, for the one-person tracker, the default detector without
masks and with masks: wall and CPU seconds per frame and view (medians of interleaved repeats), the
2-person / 1-person ratio (target <= 2x), the masks' overhead (target <= 30 %), and the people found per
view and frame in the 2-person demo.

    PYTHONPATH=$PWD python benchmarks/detection.py [--frames 100] [--repeats 3] [--skip-speed] [--people]

The machine's load average is printed before and after: timings only mean something on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mocap.detect.blazepose import DetectorConfig  # noqa: E402
from mocap.detect.consistency import reprojection_errors  # noqa: E402
from mocap.detect.parallel import combine, detect_views, usable_cores  # noqa: E402
from mocap.io.keypoints_h5 import Keypoints2D  # noqa: E402
from mocap.io.video import read_frames  # noqa: E402
from mocap.calib.qualisys import read_qca  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "pose2sim_demo_single"
MULTI = REPO.parent / "shared" / "data" / "pose2sim_demo_multi"
ONE_PERSON = DetectorConfig(max_people=1, masks=False)
CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(sources: dict[str, Path], frames: int, workers: int | None = None,
          config: DetectorConfig = DetectorConfig()) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads) of detect_views over ``sources``."""
    t0, c0 = time.perf_counter(), time.process_time()
    detect_views(sources, config, stop=frames, workers=workers)
    return time.perf_counter() - t0, time.process_time() - c0


def people_cost(F: int, repeats: int) -> None:
    """1-person sample against the 2-person demo, three detector settings, 4 views each."""
    configs = {"one-person tracker": ONE_PERSON, "default, --no-masks": DetectorConfig(masks=False),
               "default (masks)": DetectorConfig()}
    sets = {"1-person": DATA, "2-person": MULTI}
    runs = {(s, c): [] for s in sets for c in configs}
    for _ in range(repeats):
        for (s, c) in runs:
            runs[s, c].append(timed({cam: sets[s] / "videos" / f"{cam}.mp4" for cam in CAMERAS}, F, None, configs[c]))
    med = {k: np.median(np.array(v), axis=0) / (4 * F) for k, v in runs.items()}  # per frame and view
    print(f"finding everyone: seconds per frame and view (4 views x {F} frames, {usable_cores()} cores, "
          f"medians of {repeats})")
    for (s, c), (wall, cpu) in med.items():
        print(f"  {s} sample, {c}: wall {1e3 * wall:.1f} ms ({1 / wall:.1f} view-frames/s), CPU {1e3 * cpu:.1f} ms")
    for c in configs:
        print(f"  2-person / 1-person, {c}: wall {med['2-person', c][0] / med['1-person', c][0]:.2f}x, "
              f"CPU {med['2-person', c][1] / med['1-person', c][1]:.2f}x (target <= 2x)")
    for s in sets:
        base = med[s, "one-person tracker"]
        for c in ("default, --no-masks", "default (masks)"):
            print(f"  {s}: {c} / one-person tracker: wall {med[s, c][0] / base[0]:.2f}x, CPU {med[s, c][1] / base[1]:.2f}x")
        m = med[s, "default (masks)"] / med[s, "default, --no-masks"] - 1
        print(f"  {s}: masks add {100 * m[0]:.0f} % wall, {100 * m[1]:.0f} % CPU (target <= 30 %)")
    det = combine(detect_views({c: MULTI / "videos" / f"{c}.mp4" for c in CAMERAS}, DetectorConfig(), stop=F), CAMERAS)
    n = det.present.sum(axis=2)
    print("2-person demo, people found per frame: " + "; ".join(
        f"{cam}: " + ", ".join(f"{k} in {np.mean(n[:, v] == k):.0%}" for k in range(n.max() + 1) if (n[:, v] == k).any())
        for v, cam in enumerate(CAMERAS)))


def command(session: Path) -> float:
    """Wall seconds of a whole `mocap detect SESSION --force` command, as a user would time it."""
    cmd = [sys.executable, "-m", "mocap.cli", "detect", str(session), "--force"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - t0


def end_to_end(sources: dict[str, Path], repeats: int) -> None:
    """One view against four through the CLI, each in its own session folder (one camera, or all four):
    interpreter start, imports, session probing and the h5 file count on both sides, so on this short
    clip the ratio is lower than the detection-only one above."""
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {name: Path(tmp) / name for name in (*CAMERAS, "all")}
        for name, session in sessions.items():
            (session / "videos").mkdir(parents=True)
            for c, p in sources.items():
                if name in (c, "all"):
                    (session / "videos" / p.name).symlink_to(p)
        times = {name: [] for name in sessions}
        for _ in range(repeats):
            for name, session in sessions.items():
                times[name].append(command(session))
    single = float(np.mean([np.median(times[c]) for c in CAMERAS]))
    four = float(np.median(times["all"]))
    print(f"`mocap detect` end to end: one view {single:.2f} s (mean of the 4 one-camera sessions' medians), "
          f"4 views {four:.2f} s = {four / single:.2f}x")


def speed(sources: dict[str, Path], F: int, repeats: int) -> None:
    t0 = time.perf_counter()
    n = sum(1 for _ in read_frames(sources["cam01"], 0, F))
    print(f"decode only (OpenCV, cam01 1080x1920): {n / (time.perf_counter() - t0):.1f} fps")
    t0 = time.perf_counter()
    timed({"cam01": sources["cam01"]}, 2)  # imports mediapipe, builds a graph once
    print(f"start-up (imports, first graph, 2 frames): {time.perf_counter() - t0:.2f} s")
    runs = {"wall": {c: [] for c in CAMERAS}, "cpu": {c: [] for c in CAMERAS}}
    multi = {w: {"wall": [], "cpu": []} for w in (2, 4)}
    for _ in range(repeats):  # interleaved, medians below: this machine's speed drifts between minutes
        for c in CAMERAS:
            wall, cpu = timed({c: sources[c]}, F)
            runs["wall"][c].append(wall)
            runs["cpu"][c].append(cpu)
        for w in multi:
            wall, cpu = timed(sources, F, w)
            multi[w]["wall"].append(wall)
            multi[w]["cpu"].append(cpu)
    med = {k: {c: float(np.median(v)) for c, v in d.items()} for k, d in runs.items()}
    for c in CAMERAS:
        print(f"one view alone, {c}: {F / med['wall'][c]:.1f} fps ({med['wall'][c]:.2f} s wall, "
              f"{med['cpu'][c]:.2f} s CPU = {med['cpu'][c] / med['wall'][c]:.2f} cores busy)")
    single = float(np.mean(list(med["wall"].values())))
    print(f"one view alone, mean of the 4 views: {single:.2f} s = {F / single:.1f} fps "
          f"(target >= 35 fps); CPU {np.mean(list(med['cpu'].values())):.2f} s")
    for w, d in multi.items():
        wall, cpu = float(np.median(d["wall"])), float(np.median(d["cpu"]))
        print(f"4 views, {w} at once: wall {wall:.2f} s = {wall / single:.2f}x one view's mean time "
              f"(target <= 2.2x; {wall / med['wall']['cam01']:.2f}x cam01's), CPU {cpu:.2f} s "
              f"(on 2 idle cores at least {cpu / 2:.2f} s); runs {', '.join(f'{x:.2f}' for x in d['wall'])} s")


def quality(kp: Keypoints2D, rig, name: str) -> None:
    err = reprojection_errors(kp.keypoints, rig, min_confidence=0.5)
    print(f"quality, {name} (keypoints with confidence >= 0.5):")
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
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--people", action="store_true", help="only the cost of finding everyone (1 vs 2 people, masks)")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found")
    sources = {c: DATA / "videos" / f"{c}.mp4" for c in CAMERAS}
    F = args.frames
    print(f"load average before: {load()}; usable cores: {usable_cores()}; {F} frames per view")

    if args.people:
        people_cost(F, args.repeats)
        print(f"load average after: {load()}")
        return
    if not args.skip_speed:
        speed(sources, F, args.repeats)
        if F == 100:
            end_to_end(sources, args.repeats)

    rig = read_qca(DATA / "calibration" / "Calib.qca.txt").subset(CAMERAS)
    for name, config in (("default", DetectorConfig()), ("one-person tracker", ONE_PERSON)):
        quality(combine(detect_views(sources, config, stop=F), CAMERAS).best(), rig, name)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
