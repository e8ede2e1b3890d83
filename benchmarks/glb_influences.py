"""How far a GLB's mesh lands from SMPL's when a viewer reads 4 skin influences per vertex (three.js) or all.

    PYTHONPATH=. python benchmarks/glb_influences.py [--frames 120]

The bundled body has up to 7 weights per vertex; mocap's GLB writes them all, in two sets (JOINTS_0/WEIGHTS_0
the four largest, JOINTS_1/WEIGHTS_1 the rest). A reader of all sets (Blender, Babylon.js, Assimp) skins
exactly; three.js reads the first set only and renormalises it. For each synthetic motion this prints, over
every vertex and frame, the error against the body layer's own vertices (smplx): max, 99th percentile and the
share of vertices within 1 mm, for both readings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mocap.body.model import load_body  # noqa: E402
from mocap.io.gltf import write_glb  # noqa: E402
from mocap.io.rig import build_rig  # noqa: E402
from mocap.io.smpl_npz import SmplSequence  # noqa: E402
from mocap.synth.motion import generate_motion  # noqa: E402
from tests.test_export import Glb, skin_vertices  # noqa: E402
from tests.tiny_body import random_sequence, reference_pose  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=120)
    args = ap.parse_args()
    body = load_body("open")
    rng = np.random.default_rng(0)
    wide = random_sequence(args.frames, body.name, seed=1)
    betas = wide.betas
    cases = {"random wide (tests)": wide}
    for kind in ("walk", "squat", "jumping_jacks", "arm_raise", "turn"):
        m = generate_motion(kind, args.frames, 60.0, body, rng, betas=betas)
        cases[kind] = SmplSequence(poses=m.poses, trans=m.transl, betas=betas, gender="neutral", fps=60.0,
                                   surface_model=body.name)
    rig = build_rig(body, betas)
    print(f"bundled body: {len(rig.weights)} vertices, {int(((rig.weights > 0).sum(1) > 4).sum())} with more "
          "than 4 weights")
    print(f"{'motion':22s} {'reader':12s} {'max mm':>8s} {'p99 mm':>8s} {'<= 1 mm':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, seq in cases.items():
            path = Path(tmp) / "m.glb"
            write_glb(path, seq, rig)
            glb = Glb(path)
            frames = np.arange(0, seq.num_frames, 4)
            _, ref = reference_pose(body, seq, frames)
            for reader, sets in (("all sets", None), ("first 4", 1)):
                err = np.stack([np.linalg.norm(skin_vertices(glb, f, sets) - ref[k], axis=1)
                                for k, f in enumerate(frames)]) * 1000
                print(f"{name:22s} {reader:12s} {err.max():8.2f} {np.percentile(err, 99):8.2f} "
                      f"{(err <= 1).mean():8.1%}")


if __name__ == "__main__":
    main()
