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
    before the first and after the last valid frame, the nearest valid frame is held.

    Only the invalid frames are computed (``p`` itself comes back when there is none): a valid frame's slerp
    (at 0, from itself) is the frame exactly, and a long take's interpolation terms for every frame at once
    held five copies of its rotations."""
    good, t = np.flatnonzero(valid), np.flatnonzero(~valid)
    if len(t) == 0:
        return p
    right = np.clip(np.searchsorted(good, t), 0, len(good) - 1)
    left = np.clip(right - 1, 0, len(good) - 1)
    left = np.where(good[right] <= t, right, left)
    i0, i1 = torch.as_tensor(good[left]), torch.as_tensor(good[right])
    span = (good[right] - good[left]).clip(min=1)
    alpha = torch.as_tensor(np.clip((t - good[left]) / span, 0, 1), dtype=p.transl.dtype)
    rot = p.rotations  # a new tensor: filled in place
    transl = p.transl.clone()
    # slerp(R0, R1, a) = R0 exp(a log(R0^T R1)), per frame
    rel = matrix_to_axis_angle(rot[i0].transpose(-1, -2) @ rot[i1])
    rot[t] = rot[i0] @ axis_angle_to_matrix(alpha[:, None, None] * rel)
    transl[t] = p.transl[i0] + alpha[:, None] * (p.transl[i1] - p.transl[i0])
    return BodyParams.from_rotations(rot, p.betas, transl)


def smooth(p: BodyParams, sigma: float, chunk: int = 1024) -> BodyParams:
    """Gaussian smoothing over frames: translation directly, rotations in the tangent space at each frame
    (``R_f exp(sum_k w_k log(R_f^T R_{f+k}))``); NaN frames neither contribute nor change.

    ``chunk`` frames at a time, their neighbours gathered from ``p`` as needed: the neighbourhood terms are
    ``(F, W, 24, 3, 3)``, several hundred MB each for a long take (18,000 frames, W = 7) if made at once, and
    of the take's rotations only the result is held (before: five copies)."""
    F = len(p)
    radius = max(1, int(round(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2).to(p.transl.dtype)
    ok = torch.isfinite(p.transl).all(-1)
    eye = torch.eye(3, dtype=p.transl.dtype)
    finite = lambda r, f: torch.where(ok[f][..., None, None, None], r, eye)  # noqa: E731  (finite_or_rest's)
    safe_transl = torch.where(ok[:, None], p.transl, torch.zeros_like(p.transl))
    new_rot = torch.empty(F, 24, 3, 3, dtype=p.transl.dtype)
    transl = torch.empty_like(p.transl)
    for start in range(0, F, chunk):
        f = torch.arange(start, min(start + chunk, F))
        near = f[:, None] + offsets
        nb = near.clamp(0, F - 1)  # (B, W) neighbour frames, edges clamped
        w = kernel * ((near >= 0) & (near < F)) * ok[nb] * ok[f][:, None]
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        own = _rotations_at(p, f)
        rot_f = finite(own, f)
        rel = matrix_to_axis_angle(rot_f[:, None].transpose(-1, -2) @ finite(_rotations_at(p, nb), nb))  # (B, W, 24, 3)
        r = rot_f @ axis_angle_to_matrix((w[..., None, None] * rel).sum(1))
        new_rot[f] = torch.where(ok[f][:, None, None, None], r, own)
        transl[f] = torch.where(ok[f][:, None], (w[..., None] * safe_transl[nb]).sum(1), p.transl[f])
    return BodyParams.from_rotations(new_rot, p.betas, transl)


def _rotations_at(p: BodyParams, f: torch.Tensor) -> torch.Tensor:
    """``(*f.shape, 24, 3, 3)`` the rotations of frames ``f`` of ``p``."""
    return torch.cat([p.global_orient[f][..., None, :, :], p.body_pose[f]], -3)
