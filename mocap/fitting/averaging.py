"""Multi-view averaging of per-view body proposals (ReFit section 3.5, Figure 4).

Every updater (the keypoint LM of :mod:`mocap.fitting.updater`, the learned ReFit network later) proposes,
for each view, a full body from that view's evidence alone; this module merges the proposals into one
world-frame body. Shapes: ``B`` frames, ``V`` views, 23 body joints.

- betas: (weighted) mean over views;
- body_pose: per joint, the weighted chordal mean of the views' rotation matrices, projected to SO(3);
- global_orient: each view's camera-frame proposal brought into the world frame (``R_v^T @ G_v``), then
  rotation-averaged; a world-frame updater passes ``R_v @ G`` so both kinds share this function;
- transl: mean in the world frame, skipping views that give none (NaN).

Weights ``(B, V, 24)`` are per view and per joint (joint 0 = global orientation); betas and transl use a
view's mean weight over its joints. Non-finite proposals get weight 0, so a view that sees nothing never
moves the average.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mocap.rotations import chordal_mean

__all__ = ["Proposals", "average_proposals", "rotation_median", "AVERAGING_MODES"]

AVERAGING_MODES = ("chordal", "median")
_MEDIAN_ITERATIONS = 8


@dataclass(frozen=True)
class Proposals:
    """One proposal per view, per frame (``B`` frames, ``V`` views)."""

    global_orient: Tensor  # (B, V, 3, 3) rotation matrices, in each view's CAMERA frame
    body_pose: Tensor  # (B, V, 23, 3, 3)
    betas: Tensor  # (B, V, 10)
    transl: Tensor  # (B, V, 3) world-frame translation (NaN when a view gives none)


def _rotation_mean(Rs: Tensor, w: Tensor, mode: str) -> Tensor:
    """``(B, V, J, 3, 3)`` with weights ``(B, V, J)`` -> ``(B, J, 3, 3)``, averaged over views (dim 1)."""
    X = chordal_mean(Rs, w, dim=1)
    if mode == "median":
        # Weiszfeld iterations for the chordal L1 mean: a view far from the consensus loses weight as 1/distance.
        for _ in range(_MEDIAN_ITERATIONS):
            d = torch.linalg.matrix_norm(Rs - X[:, None]).clamp_min(1e-6)
            X = chordal_mean(Rs, w / d, dim=1)
    return X


def rotation_median(Rs: Tensor, w: Tensor) -> Tensor:
    """Weighted chordal L1 mean over dim 1: ``(B, V, J, 3, 3)``, weights ``(B, V, J)`` -> ``(B, J, 3, 3)``."""
    return _rotation_mean(Rs, w, "median")


def _finite_rotations(Rs: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    ok = torch.isfinite(Rs).all(-1).all(-1)
    eye = torch.eye(3, dtype=Rs.dtype, device=Rs.device)
    return torch.where(ok[..., None, None], Rs, eye), w * ok


def _weighted_vector_mean(x: Tensor, w: Tensor) -> Tensor:
    """``(B, V, C)`` with weights ``(B, V)`` -> ``(B, C)``; NaN views skipped; NaN where no view gives any."""
    ok = torch.isfinite(x).all(-1)
    w = w * ok
    total = w.sum(1, keepdim=True)
    x0 = torch.where(ok[..., None], x, torch.zeros_like(x))
    mean = (w[..., None] * x0).sum(1) / total.clamp_min(torch.finfo(x.dtype).tiny)
    return torch.where(total > 0, mean, torch.full_like(mean, float("nan")))


def average_proposals(p: Proposals, R: Tensor, weights: Tensor | None = None,
                      mode: str = "chordal") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Merge per-view proposals into one world-frame body per frame.

    Args:
        p: the views' proposals, see :class:`Proposals`.
        R: ``(V, 3, 3)`` world-to-camera rotations of the views.
        weights: ``(B, V, 24)`` non-negative per-view, per-joint weights (joint 0 = global orientation);
            ``None`` for plain means (ReFit). A joint whose weights are all zero falls back to the plain mean.
        mode: ``"chordal"`` (weighted chordal L2 mean, ReFit) or ``"median"`` (chordal L1 mean by Weiszfeld
            iterations, robust to one grossly wrong view at a few times the cost).

    Returns:
        global_orient ``(B, 3, 3)`` world frame, body_pose ``(B, 23, 3, 3)``, betas ``(B, 10)``, transl ``(B, 3)``
        (NaN for a frame where no view gives a translation).
    """
    if mode not in AVERAGING_MODES:
        raise ValueError(f"unknown averaging mode {mode!r}; use one of {', '.join(AVERAGING_MODES)}")
    B, V = p.body_pose.shape[:2]
    dtype = p.body_pose.dtype
    if weights is None:
        weights = torch.ones(B, V, 24, dtype=dtype, device=p.body_pose.device)
    weights = torch.broadcast_to(weights.to(dtype), (B, V, 24))
    go_world = R.to(dtype).transpose(-1, -2) @ p.global_orient  # (B, V, 3, 3)
    rots = torch.cat([go_world[:, :, None], p.body_pose], 2)  # (B, V, 24, 3, 3)
    rots, w = _finite_rotations(rots, weights)
    mean = _rotation_mean(rots, w, mode)
    view_w = w.mean(-1)  # (B, V)
    # A frame whose views all have zero weight falls back to the plain mean, as rotations do.
    plain = torch.ones_like(view_w)
    betas, transl = (torch.where(torch.isfinite(m := _weighted_vector_mean(x, view_w)), m, _weighted_vector_mean(x, plain))
                     for x in (p.betas, p.transl))
    return mean[:, 0], mean[:, 1:], betas, transl
