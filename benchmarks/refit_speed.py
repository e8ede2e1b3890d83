"""ReFit speed: backbone time per crop and time per feedback-update step, on CPU or a GPU.

    python benchmarks/refit_speed.py [--backbone w48|w32] [--device cpu|cuda] [--views 4] [--iters 10] [--repeat 3]

Weights are random (speed does not depend on them) and the body is a random SMPL-topology mesh unless
``--body`` names one, so the script runs anywhere. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from mocap.body.model import PARENTS, BodyModel, load_body
from mocap.cameras import project_camera_points
from mocap.fitting.refit import CropGeometry, Refit
from mocap.fitting.refit.multiview import reference_merge, world_merge
from mocap.rotations import axis_angle_to_matrix


def synthetic_body() -> BodyModel:
    rng = np.random.default_rng(0)
    part = np.arange(6890) % 24
    weights = np.eye(24)[part]
    data = dict(v_template=rng.normal(0, 0.3, (6890, 3)), f=rng.integers(0, 6890, (13776, 3)),
                J_regressor=weights.T / weights.sum(0)[:, None], weights=weights,
                shapedirs=rng.normal(0, 0.01, (6890, 3, 10)), posedirs=rng.normal(0, 1e-3, (6890, 3, 207)),
                kintree_table=np.stack([np.array(PARENTS) % 2**32, np.arange(24)]))
    return BodyModel(data, "synthetic", "smpl")


class _Fixed(torch.nn.Module):
    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value

    def forward(self, _):
        return self.value


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _best(fn, device: str, repeat: int) -> float:
    fn()  # warm-up (allocations, cuDNN autotuning)
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", choices=("w48", "w32"), default="w48")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--body", default=None, help="SMPL body spec/path (default: a random SMPL-topology mesh)")
    args = ap.parse_args()
    dev = args.device
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = Refit(args.backbone).eval()
    model.set_body(load_body(args.body) if args.body else synthetic_body())
    model.to(dev)
    V = args.views
    name = torch.cuda.get_device_name() if dev == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# ReFit {args.backbone}, {name}, torch {torch.__version__}, float32, best of {args.repeat}")

    with torch.no_grad():
        for n in sorted({1, V}):
            img = torch.randn(n, 3, 256, 256, device=dev)
            t = _best(lambda: model.encode(img), dev, args.repeat)
            print(f"backbone, batch {n}: {1e3 * t:.1f} ms per batch, {1e3 * t / n:.1f} ms per crop")

        img = torch.randn(V, 3, 256, 256, device=dev)
        feature, z = model.encode(img)
        t = _best(lambda: model.corr_layer(feature), dev, args.repeat)
        print(f"correlation head, batch {V}: {1e3 * t / V:.1f} ms per crop")
        geom = CropGeometry(torch.tensor([950.0, 540.0], device=dev).expand(V, 2).clone(),
                            torch.full((V,), 3.0, device=dev), torch.full((V,), 1100.0, device=dev),
                            torch.tensor([960.0, 540.0], device=dev).expand(V, 2).clone())
        R = axis_angle_to_matrix(torch.stack([torch.tensor([0.0, 2 * np.pi * v / V, 0.0]) for v in range(V)])).to(dev)
        t_w = torch.tensor([0.0, 0.0, 4.0], device=dev).expand(V, 3)
        K = torch.tensor([[1100.0, 0, 960], [0, 1100, 540], [0, 0, 1]], device=dev).expand(V, 3, 3)
        dist = torch.zeros(V, 5, device=dev)
        setups = {"single-view": (None, None), "multi-view reference": (reference_merge(R), None),
                  "multi-view world": (world_merge(model.smpl, geom, R, t_w),
                                       lambda X: project_camera_points(X, K, dist))}
        # The correlation head is timed above; hold its output fixed so the loop's time is not buried in it.
        head, model.corr_layer = model.corr_layer, _Fixed(model.corr_layer(feature))
        for label, (merge, projector) in setups.items():
            t0 = _best(lambda: model.refine(feature, z, geom, 0, merge, projector), dev, args.repeat)
            tk = _best(lambda: model.refine(feature, z, geom, args.iters, merge, projector), dev, args.repeat)
            print(f"update loop ({label}, {V} crops): {1e3 * (tk - t0) / args.iters:.2f} ms per iteration, "
                  f"initial estimate {1e3 * t0:.1f} ms")
        model.corr_layer = head
    return 0


if __name__ == "__main__":
    sys.exit(main())
