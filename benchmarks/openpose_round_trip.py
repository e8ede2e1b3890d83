"""OpenPose round trip: does `mocap detect export` + `mocap detect import` keep the fit where it was?

A `mocap synth` session (4 cameras, BlazePose keypoints with noise, outliers and occlusion) is fitted three times,
each with `mocap run` and evaluated with `mocap eval` against its ground truth:

1. ``direct``: the session's own BlazePose keypoints;
2. ``round trip``: ``mocap detect export --format openpose`` (BODY_25 JSON, ``keypoint_source`` recorded), then
   ``mocap detect import``, which maps BODY_25 back to BlazePose's landmarks;
3. ``as BODY_25``: the same JSON with ``keypoint_source`` removed, i.e. read as OpenPose's own BODY_25 (what any
   reader that ignores the key does, and what mocap did before it recorded the source);
4. ``--layout blazepose33``: all 33 BlazePose landmarks in OpenPose's JSON, and back.

Each fit is also compared with the direct fit (``mocap eval FIT --gt direct/output/smpl.npz``): how far the
round trip moves the body's joints.

    PYTHONPATH=$PWD python benchmarks/openpose_round_trip.py [--frames 120] [--motion walk] [--keep DIR]

Prints MPJPE, PA-MPJPE and the shoulders' per-joint error (mm) of each, against the truth and against the
direct fit, and the commands it ran.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def mocap(*args: str) -> None:
    cmd = [sys.executable, "-m", "mocap.cli", *args]
    print("$ mocap", " ".join(args), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def evaluate(result: Path, gt: Path, out: Path) -> dict:
    mocap("eval", str(result), "--gt", str(gt), "--json", str(out))
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--motion", default="walk")
    ap.add_argument("--keep", type=Path, help="Keep the sessions in this folder.")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="openpose_rt_"))
    direct = work / "direct"
    mocap("synth", str(direct), "--frames", str(args.frames), "--motion", args.motion)
    sessions = {"direct": direct, "round trip (BODY_25, source recorded)": work / "roundtrip",
                "as BODY_25 (source ignored)": work / "as_body25", "round trip (--layout blazepose33)": work / "bp33"}
    for path in list(sessions.values())[1:]:
        shutil.copytree(direct, path, ignore=shutil.ignore_patterns("output"))
    mocap("detect", "export", str(direct), "--format", "openpose", "-o", str(work / "openpose"))
    mocap("detect", "export", str(direct), "--format", "openpose", "--layout", "blazepose33", "-o", str(work / "op33"))
    shutil.copytree(work / "openpose", work / "openpose_plain")
    for f in (work / "openpose_plain").rglob("*.json"):
        data = json.loads(f.read_text())
        data.pop("keypoint_source"), data.pop("absent_keypoints", None)
        f.write_text(json.dumps(data))
    for folder, path in zip(("openpose", "openpose_plain", "op33"), list(sessions.values())[1:]):
        mocap("detect", "import", str(work / folder), "--format", "openpose", "-o", str(path))
    for path in sessions.values():
        mocap("run", str(path))
    direct_fit = direct / "output" / "smpl.npz"
    print(f"\n{args.motion}, {args.frames} frames, 4 cameras; joint errors in mm")
    print("| keypoints | MPJPE vs truth | PA-MPJPE vs truth | shoulders L / R vs truth | MPJPE vs direct fit | "
          "shoulders L / R vs direct fit |")
    print("|---|---|---|---|---|---|")
    for name, path in sessions.items():
        t = evaluate(path / "output" / "smpl.npz", path / "ground_truth.npz", path / "vs_truth.json")
        d = evaluate(path / "output" / "smpl.npz", direct_fit, path / "vs_direct.json")
        print(f"| {name} | {t['mpjpe']:.1f} | {t['pa_mpjpe']:.1f} | {t['per_joint']['left_shoulder']:.1f} / "
              f"{t['per_joint']['right_shoulder']:.1f} | {d['mpjpe']:.1f} | {d['per_joint']['left_shoulder']:.1f} / "
              f"{d['per_joint']['right_shoulder']:.1f} |", flush=True)
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
