"""Multi-view fitting accuracy and speed on `mocap synth` sessions with known truth.

    python benchmarks/fitting.py [--quick] [--motions walk,squat] [--frames 120] [--seed 0]

Each motion: a synthetic session (4 cameras, noise 3 px, 5 % outliers, 10 % occlusion, BlazePose-33
keypoints) fitted by

- ``triangulation+IK``: the initialisation alone (triangulation, then a short IK fit; 0 feedback iterations);
- ``average weighted``: per-view updates merged with per-view, per-joint weights (ReFit section 3.5; the
  default before the temporal prior, the baseline of this run);
- ``joint``: one Levenberg-Marquardt step over all views per iteration, frame by frame;
- ``joint + temporal``: the same over windows of frames with the joint-acceleration prior (the default);

each without a shape (betas fitted on 30 frames, then held) and with ``--shape`` = the TRUE betas (Shape
ReFit with a perfect subject file, the upper bound of a good `mocap shape`). Metrics from `mocap.eval`
(mm): MPJPE (pelvis-aligned), PA-MPJPE, PVE, acceleration error. Speed: frames per second of
`fit_sequence` (detection excluded) with the subject's shape given, and with the shape fit included.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mocap.eval.evaluate import evaluate_sequences
from mocap.eval.loaders import BodySequence, load_sequence
from mocap.fitting.run import load_inputs
from mocap.fitting.sequence import fit_sequence
from mocap.fitting.temporal import TemporalConfig
from mocap.synth.session import SynthConfig, synthesize

MOTIONS = ("walk", "squat", "jumping_jacks", "arm_raise", "turn", "mixed")
OFF = TemporalConfig(accel_sigma=0.0)
METHODS = {
    "triangulation+IK": dict(iterations=0, temporal=OFF),
    "average weighted": dict(combine="average", weighting="information", temporal=OFF),
    "joint": dict(combine="joint", temporal=OFF),
    "joint + temporal (default)": dict(),
}
KEYS = ("mpjpe", "pa_mpjpe", "pve", "accel_error")


def as_sequence(result, body) -> BodySequence:
    p = result.params
    F = len(p)
    with torch.no_grad():
        poses = p.poses().double().numpy().reshape(F, 24, 3)
    return BodySequence(poses, p.transl.double().numpy(), np.repeat(result.betas.double().numpy()[None], F, 0),
                        body.gender, body.name, result.fps, "smpl", Path("fit"))


def run_motion(motion: str, frames: int, root: Path, seed: int) -> list[dict]:
    session = root / motion
    synthesize(session, SynthConfig(cameras=4, frames=frames, motion=motion, noise=3.0, outliers=0.05,
                                    occlusion=0.1, seed=seed))
    inp = load_inputs(session)
    gt = load_sequence(session / "ground_truth.npz")
    true_betas = torch.as_tensor(gt.betas[0], dtype=inp.body.dtype)
    rows = []
    for method, changes in METHODS.items():
        cfg = inp.pipeline.fit.replace(**changes)
        for shape in (False, True):
            t0, c0 = time.perf_counter(), time.process_time()
            res = fit_sequence(inp.keypoints, inp.rig, inp.body, inp.spec, cfg, true_betas if shape else None)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            m = evaluate_sequences(as_sequence(res, inp.body), gt, inp.body, inp.body)
            rows.append(dict(motion=motion, method=method, shape=shape, fps=frames / seconds, cpu_ms=1000 * cpu / frames,
                             **{k: getattr(m, k) for k in KEYS}))
            print(f"  {motion:14s} {method:26s} shape={'true' if shape else 'fit '} "
                  + " ".join(f"{k}={rows[-1][k]:6.1f}" for k in KEYS) + f" fps={rows[-1]['fps']:5.1f} cpu={rows[-1]['cpu_ms']:5.1f} ms/frame", flush=True)
    return rows


def table(rows: list[dict], motions: list[str]) -> str:
    head = "| method | shape | MPJPE | PA-MPJPE | PVE | accel | frames/s | CPU ms/frame |"
    lines = [head, "|" + "---|" * 8]
    for method in METHODS:
        for shape in (False, True):
            sel = [r for r in rows if r["method"] == method and r["shape"] == shape]
            vals = [np.mean([r[k] for r in sel]) for k in KEYS]
            fps = len(sel) / np.sum([1 / r["fps"] for r in sel])
            cpu = np.mean([r["cpu_ms"] for r in sel])
            lines.append(f"| {method} | {'true betas' if shape else 'fitted'} | "
                         + " | ".join(f"{v:.1f}" for v in vals) + f" | {fps:.1f} | {cpu:.0f} |")
    per = ["", "MPJPE (mm) per motion, shape fitted:", "",
           "| method | " + " | ".join(motions) + " |", "|---|" + "---|" * len(motions)]
    for method in METHODS:
        vals = [next(r["mpjpe"] for r in rows if r["method"] == method and not r["shape"] and r["motion"] == m)
                for m in motions]
        per.append(f"| {method} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")
    return "\n".join(lines + per)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="two motions, 40 frames")
    ap.add_argument("--motions", default=None, help="comma-separated subset of " + ",".join(MOTIONS))
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    motions = args.motions.split(",") if args.motions else (["walk", "jumping_jacks"] if args.quick else list(MOTIONS))
    frames = args.frames or (40 if args.quick else 120)
    print(f"# fitting benchmark: {len(motions)} motions x {frames} frames, 4 cameras, the keypoints pipeline's defaults")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for motion in motions:
            rows += run_motion(motion, frames, Path(tmp), args.seed)
    print()
    print(f"Mean over {', '.join(motions)} ({frames} frames each); errors in mm; frames/s (wall clock) and CPU ms "
          "per frame (all threads) of the whole fit, shape fit included when fitted, detection excluded.\n")
    print(table(rows, motions))


if __name__ == "__main__":
    main()
