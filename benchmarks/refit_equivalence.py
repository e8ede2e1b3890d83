"""Relative error of our ReFit against the official forward passes (reference data, recipe weights).

    python benchmarks/refit_equivalence.py [--reference DIR] [--backbone w48|w32]

Prints ``max|ours - golden| / max|golden|`` for every compared tensor of the single-view and multi-view
golden files, then ``max relative error: X`` as the last line. Acceptance: X <= 1e-4.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mocap.fitting.refit.reference import GOLDEN_FILES, build_reference_model, compare_golden, run_golden

DEFAULT_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "refit_reference"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the refit_reference folder")
    ap.add_argument("--backbone", choices=("w48", "w32"), default="w48")
    args = ap.parse_args()
    if not args.reference.is_dir():
        print(f"error: {args.reference} not found; pass --reference DIR", file=sys.stderr)
        return 2
    model = build_reference_model(args.reference, args.backbone)
    worst = 0.0
    for kind in ("single", "multi"):
        golden = np.load(args.reference / GOLDEN_FILES[(args.backbone, kind)])
        t0 = time.perf_counter()
        errors = compare_golden(run_golden(model, golden), golden)
        print(f"# {GOLDEN_FILES[(args.backbone, kind)]}: {len(errors)} tensors, {time.perf_counter() - t0:.1f} s, "
              f"{torch.get_num_threads()} threads")
        for key, err in errors.items():
            print(f"{kind:6s} {key:30s} {err:.3e}")
        worst = max(worst, *errors.values())
    print(f"max relative error: {worst:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
