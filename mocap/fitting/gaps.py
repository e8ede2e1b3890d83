"""Frames between fits: gaps filled by interpolation, and the Gaussian post-filter over a take."""

from __future__ import annotations

import numpy as np
import torch

from mocap.fitting.params import BodyParams
from mocap.rotations import axis_angle_to_matrix, matrix_to_axis_angle


def finite_or_rest(p: BodyParams) -> BodyParams:
    ok = torch.isfinite(p.transl).all(-1)
    return p.where(ok, BodyParams.rest(len(p), p.transl.dtype))


def interpolate(p: BodyParams, valid: np.ndarray) -> BodyParams:
    """Fill invalid frames: rotations by slerp, translation linearly, between the nearest valid frames;
    before the first and after the last valid frame, the nearest valid frame is held."""
    F = len(valid)
    good = np.flatnonzero(valid)
    t = np.arange(F)
    right = np.clip(np.searchsorted(good, t), 0, len(good) - 1)
    left = np.clip(right - 1, 0, len(good) - 1)
    left = np.where(good[right] <= t, right, left)
    i0, i1 = torch.as_tensor(good[left]), torch.as_tensor(good[right])
    span = (good[right] - good[left]).clip(min=1)
    alpha = torch.as_tensor(np.clip((t - good[left]) / span, 0, 1), dtype=p.transl.dtype)
    rot = p.rotations
    # slerp(R0, R1, a) = R0 exp(a log(R0^T R1)), per frame
    rel = matrix_to_axis_angle(rot[i0].transpose(-1, -2) @ rot[i1])
    new_rot = rot[i0] @ axis_angle_to_matrix(alpha[:, None, None] * rel)
    transl = p.transl[i0] + alpha[:, None] * (p.transl[i1] - p.transl[i0])
    return BodyParams.from_rotations(new_rot, p.betas, transl)


def smooth(p: BodyParams, sigma: float, chunk: int = 1024) -> BodyParams:
    """Gaussian smoothing over frames: translation directly, rotations in the tangent space at each frame
    (``R_f exp(sum_k w_k log(R_f^T R_{f+k}))``); NaN frames neither contribute nor change.

    ``chunk`` frames at a time: the neighbourhood terms are ``(F, W, 24, 3, 3)``, several hundred MB each for a
    long take (18,000 frames, W = 7) if made at once."""
    F = len(p)
    radius = max(1, int(round(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2).to(p.transl.dtype)
    ok = torch.isfinite(p.transl).all(-1)
    safe = finite_or_rest(p)
    rot = safe.rotations  # (F, 24, 3, 3)
    new_rot, transl = [], []
    for start in range(0, F, chunk):
        f = torch.arange(start, min(start + chunk, F))
        near = f[:, None] + offsets
        nb = near.clamp(0, F - 1)  # (B, W) neighbour frames, edges clamped
        w = kernel * ((near >= 0) & (near < F)) * ok[nb] * ok[f][:, None]
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        rel = matrix_to_axis_angle(rot[f][:, None].transpose(-1, -2) @ rot[nb])  # (B, W, 24, 3)
        new_rot.append(rot[f] @ axis_angle_to_matrix((w[..., None, None] * rel).sum(1)))
        transl.append((w[..., None] * safe.transl[nb]).sum(1))
    smoothed = BodyParams.from_rotations(torch.cat(new_rot), p.betas, torch.cat(transl))
    return smoothed.where(ok, p)
