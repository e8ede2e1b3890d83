"""Export speed: a 10-minute, 60 fps sequence (36,000 frames) to npz, h5, BVH, GLB and FBX.

Targets (issue 9): BVH and npz under 30 s each; FBX time reported. Issue 20: the whole `mocap export` command
(start-up included) to BVH and to GLB under 5 s each for 18,000 frames (``--cli-frames``; 0 skips it).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/export.py [--frames 36000] [--cli-frames 18000] [--fbx-frames N] [--body SPEC]

The body defaults to the bundled one, else the fake SMPL in ../shared (both 6890-vertex meshes are the size the
FBX and GLB writers care about). The motion is synthetic (smooth sinusoids on every joint, a walking root).
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

from mocap.body.model import OPEN_BODY_FILE, load_body
from mocap.io.export import export_sequence
from mocap.io.smpl_npz import SmplSequence, load_sequence, save_sequence

FAKE_SMPL = Path(__file__).resolve().parents[1].parent / "shared" / "refit_reference" / "fake_smpl.npz"


def motion(frames: int, fps: float, surface_model: str) -> SmplSequence:
    rng = np.random.default_rng(0)
    t = np.arange(frames)[:, None, None] / fps
    poses = 0.6 * np.sin(2 * np.pi * rng.uniform(0.2, 1.5, (24, 3)) * t + rng.uniform(0, 6.3, (24, 3)))
    poses[:, 0] = np.stack([0 * t[:, 0, 0], 0.3 * t[:, 0, 0], 0 * t[:, 0, 0]], 1)
    trans = np.stack([np.sin(0.1 * t[:, 0, 0]), 0.9 + 0.02 * np.sin(6 * t[:, 0, 0]), 0.5 * t[:, 0, 0] % 8], 1)
    return SmplSequence(poses=poses, trans=trans, betas=rng.normal(0, 1, 10), gender="neutral", fps=fps,
                        surface_model=surface_model, extra={"fit_error": rng.random(frames).astype(np.float32)})


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:8.2f} s", flush=True)
    return seconds


def timed_command(label: str, argv: list[str]) -> None:
    """Wall and CPU (user + system, from the kernel) seconds of one whole command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(f"{label:<34} {wall:8.2f} s wall {cpu:8.2f} s CPU", flush=True)


def commands(seq: SmplSequence, spec: str, frames: int, out: Path) -> None:
    """`mocap export` to BVH and GLB as a user runs it, on the first ``frames`` frames of ``seq``."""
    short = SmplSequence(**{**seq.__dict__, "poses": seq.poses[:frames], "trans": seq.trans[:frames], "extra": {}})
    save_sequence(out / "cli.npz", short)
    print(f"whole `mocap export` commands, {frames} frames (load average {os.getloadavg()[0]:.2f})")
    for fmt in ("bvh", "glb"):
        timed_command(f"mocap export -o cli.{fmt}", [sys.executable, "-m", "mocap.cli", "export", str(out / "cli.npz"),
                                                  "-o", str(out / f"cli.{fmt}"), "--body", spec])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=36_000)
    ap.add_argument("--fps", type=float, default=60.0)
    ap.add_argument("--cli-frames", type=int, default=18_000, help="frames for the whole-command timings; 0 skips")
    ap.add_argument("--fbx-frames", type=int, default=None, help="frames for FBX (default: --frames); 0 skips FBX")
    ap.add_argument("--body", default=None)
    args = ap.parse_args()
    spec = args.body or ("open" if OPEN_BODY_FILE.is_file() else str(FAKE_SMPL))
    body = load_body(spec)
    seq = motion(args.frames, args.fps, body.name)
    print(f"body {body.name} ({body.num_vertices} vertices), {args.frames} frames at {args.fps:g} fps")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        if args.cli_frames:
            commands(seq, spec, args.cli_frames, out)
        timed("npz write", lambda: export_sequence(seq, out / "s.npz", "npz"))
        timed("npz read + validate", lambda: load_sequence(out / "s.npz"))
        timed("h5 write", lambda: export_sequence(seq, out / "s.h5", "h5"))
        timed("bvh write (cm)", lambda: export_sequence(seq, out / "s.bvh", "bvh", body_spec=spec, units="cm"))
        timed("glb write", lambda: export_sequence(seq, out / "s.glb", "glb", body_spec=spec))
        fbx_frames = args.frames if args.fbx_frames is None else args.fbx_frames
        if fbx_frames:
            short = SmplSequence(**{**seq.__dict__, "poses": seq.poses[:fbx_frames], "trans": seq.trans[:fbx_frames],
                                    "extra": {}})
            timed(f"fbx write ({fbx_frames} frames, bpy)", lambda: export_sequence(short, out / "s.fbx", "fbx", body_spec=spec))
        for f in sorted(out.iterdir()):
            print(f"  {f.name:<8} {f.stat().st_size / 1e6:8.1f} MB")


if __name__ == "__main__":
    main()
