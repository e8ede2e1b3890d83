"""Fitting accuracy on rendered synthetic footage: BlazePose run on `mocap synth --render` videos, true calibration.

    python benchmarks/fitting_rendered.py [--motions walk,squat,jumping_jacks] [--frames 40] [--scale 0.4] [--root DIR]

Each motion: a rendered session (4 cameras, images scaled by ``--scale`` so that rendering and detection stay
short on 2 cores), its synthetic keypoints set aside and BlazePose detected on the videos, then fitted by the
previous default (keypoints only) and the default (keypoints and the person masks' silhouettes), each with the
shape fitted from the footage and with the true betas. Sessions in ``--root`` are reused. Prints one line per fit and the means.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import time

from fitting import as_sequence
from mocap.eval.evaluate import evaluate_sequences
from mocap.eval.loaders import load_sequence
from mocap.fitting.run import load_inputs
from mocap.fitting.sequence import fit_sequence
from mocap.fitting.silhouette import SilhouetteConfig
from mocap.synth.session import SynthConfig, synthesize

METHODS = {"previous (keypoints only)": dict(silhouette=SilhouetteConfig(enabled=False)), "default (silhouettes)": {}}


def session(root: Path, motion: str, frames: int, scale: float) -> Path:
    from mocap.detect.stage import detect_session
    from mocap.session import Session

    s = root / motion
    if not (s / "ground_truth.npz").is_file():
        synthesize(s, SynthConfig(cameras=4, frames=frames, motion=motion, render=True, board_frames=10,
                                  image_scale=scale, seed=0))
        (s / "output" / "keypoints2d.h5").rename(s / "output" / "keypoints2d_synthetic.h5")
    if not (s / "output" / "keypoints2d.h5").is_file():
        detect_session(Session.load(s))
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--motions", default="walk,squat,jumping_jacks")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--scale", type=float, default=0.4)
    ap.add_argument("--root", type=Path, default=None, help="keep the sessions here (default: a temporary folder)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        for motion in args.motions.split(","):
            s = session(root, motion, args.frames, args.scale)
            inp, gt = load_inputs(s), load_sequence(s / "ground_truth.npz")
            true_betas = torch.as_tensor(gt.betas[0], dtype=inp.body.dtype)
            for method, changes in METHODS.items():
                for shape in (False, True):
                    t0 = time.process_time()
                    res = fit_sequence(inp.keypoints, inp.rig, inp.body, inp.spec, inp.pipeline.fit.replace(**changes),
                                       true_betas if shape else None)
                    cpu = time.process_time() - t0
                    m = evaluate_sequences(as_sequence(res, inp.body), gt, inp.body, inp.body)
                    rows.append((method, shape, m.mpjpe, m.pa_mpjpe, m.pve, m.accel_error, cpu))
                    print(f"  {motion:14s} {method:26s} shape={'true' if shape else 'fit '} MPJPE {m.mpjpe:.1f} "
                          f"PA-MPJPE {m.pa_mpjpe:.1f} PVE {m.pve:.1f} accel {m.accel_error:.1f} fit CPU {cpu:.1f} s", flush=True)
    print("\n| method | shape | MPJPE | PA-MPJPE | PVE | accel | fit CPU s |\n|---|---|---|---|---|---|---|")
    for method in METHODS:
        mean = {shape: np.mean([r[2:] for r in rows if r[0] == method and r[1] == shape], 0) for shape in (False, True)}
        for shape in (False, True):
            print(f"| {method} | {'true betas' if shape else 'fitted'} | " + " | ".join(f"{v:.1f}" for v in mean[shape]) + " |")
        print(f"  {method}: fitted shape's MPJPE {mean[False][0] / mean[True][0]:.2f}x the true shape's")


if __name__ == "__main__":
    main()
