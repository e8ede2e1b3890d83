"""Priors that ship with the code (no learned or downloaded model): a per-joint Gaussian on body pose,
hinge limits on knees and elbows, and a Gaussian on betas.

All are residual vectors ``(B, N)`` whose squares add to the fitting energy, so the Gauss-Newton solver
handles them like the data term. The pose prior is zero-mean in SMPL's axis-angle, with a standard
deviation per joint and axis (radians) set by hand from ordinary human ranges of motion: wide where
joints move a lot (shoulders, hips, knee and elbow flexion), narrow where they barely move (knee and
elbow side-bend, collars, feet). Limits penalise knee and elbow hyperextension, as SMPLify's angle prior
does (same joints and signs), but as a hinge that is zero inside the range.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mocap.rotations import matrix_to_axis_angle

# (x, y, z) standard deviations in radians for the 23 body joints, SMPL order (joint 1 = left_hip).
_POSE_SIGMA = {
    "left_hip": (1.0, 0.5, 0.5), "right_hip": (1.0, 0.5, 0.5), "spine1": (0.3, 0.3, 0.3),
    "left_knee": (1.5, 0.1, 0.1), "right_knee": (1.5, 0.1, 0.1), "spine2": (0.3, 0.3, 0.3),
    "left_ankle": (0.5, 0.4, 0.4), "right_ankle": (0.5, 0.4, 0.4), "spine3": (0.3, 0.3, 0.3),
    "left_foot": (0.2, 0.2, 0.2), "right_foot": (0.2, 0.2, 0.2), "neck": (0.4, 0.4, 0.4),
    "left_collar": (0.2, 0.2, 0.2), "right_collar": (0.2, 0.2, 0.2), "head": (0.4, 0.4, 0.4),
    "left_shoulder": (1.2, 1.2, 1.2), "right_shoulder": (1.2, 1.2, 1.2),
    "left_elbow": (0.15, 1.5, 0.4), "right_elbow": (0.15, 1.5, 0.4),
    "left_wrist": (0.6, 0.6, 0.6), "right_wrist": (0.6, 0.6, 0.6),
    "left_hand": (0.2, 0.2, 0.2), "right_hand": (0.2, 0.2, 0.2),
}
POSE_SIGMA = torch.tensor(list(_POSE_SIGMA.values()))  # (23, 3)

# (body joint index, axis, sign): sign * angle > 0 is hyperextension. Knees flex about +x; the left
# elbow flexes about -y, the right about +y (SMPL's T-pose, arms along +-x).
_LIMITS = ((3, 0, -1.0), (4, 0, -1.0), (17, 1, 1.0), (18, 1, -1.0))


def right_jacobian_inverse(aa: Tensor) -> Tensor:
    """``(*, 3)`` axis-angle ``phi`` -> ``(*, 3, 3)`` ``J_r^-1(phi)``: ``log(exp(phi) exp(w)) = phi + J_r^-1(phi) w + O(|w|^2)``.

    ``I + [phi]x / 2 + (1/theta^2 - (1 + cos theta) / (2 theta sin theta)) [phi]x^2``; the last factor tends to
    1/12 at the identity (series used below 1e-3 rad, where the closed form cancels badly).
    """
    theta = aa.norm(dim=-1, keepdim=True)[..., None]  # (*, 1, 1)
    x, y, z = aa.unbind(-1)
    o = torch.zeros_like(x)
    W = torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).unflatten(-1, (3, 3))
    safe = theta.clamp_min(1e-3)
    c = torch.where(theta > 1e-3, 1 / safe**2 - (1 + torch.cos(safe)) / (2 * safe * torch.sin(safe)),
                    1 / 12 + theta**2 / 720)
    return torch.eye(3, dtype=aa.dtype) + W / 2 + c * (W @ W)


@dataclass(frozen=True)
class PriorConfig:
    """Weights of the priors, relative to a data term of unit-variance residuals."""

    pose: float = 1.0
    """Gaussian pose prior (per-joint standard deviations fixed in `mocap/fitting/priors.py`)."""
    limits: float = 100.0
    """Knee and elbow hyperextension hinge, per radian."""
    betas: float = 1.0
    """Gaussian prior on betas (unit standard deviation, SMPL's convention)."""


def num_prior_residuals(with_betas: bool) -> int:
    return 23 * 3 + len(_LIMITS) + (10 if with_betas else 0)


def _terms(body_pose: Tensor, cfg: PriorConfig) -> tuple[Tensor, Tensor, list[tuple[int, Tensor, Tensor]]]:
    """The pose prior's residuals ``(B, 23, 3)`` and their Jacobian rows ``(B, 23, 3, 3)`` (row (j, a) is d
    residual / d w_j: one joint each), and each limit's joint, residual ``(B,)`` and row ``(B, 3)`` on it."""
    aa = matrix_to_axis_angle(body_pose)  # (B, 23, 3)
    Jlog = right_jacobian_inverse(aa)  # (B, 23, 3, 3): d aa_j / d w_j
    sigma = POSE_SIGMA.to(aa)
    w_pose, w_lim = cfg.pose ** 0.5, cfg.limits ** 0.5
    limits = []
    for j, a, s in _LIMITS:
        active = (s * aa[:, j, a] > 0).to(aa.dtype)
        limits.append((j, w_lim * torch.relu(s * aa[:, j, a]), w_lim * s * active[:, None] * Jlog[:, j, a]))
    return w_pose * aa / sigma, w_pose * Jlog / sigma[..., None], limits


def prior_normal(body_pose: Tensor, betas: Tensor | None, cfg: PriorConfig) -> tuple[Tensor, Tensor]:
    """The priors' Gauss-Newton blocks: ``J^T J`` ``(B, 23, 3, 3)`` per joint (every prior residual depends on
    one joint's increment only, so ``J^T J`` is block-diagonal) and ``J^T r`` ``(B, 23, 3)``; with ``betas``
    (B, 10), also the betas prior's ``J^T r`` ``(B, 10)`` (its ``J^T J`` is ``cfg.betas`` times the identity).

    What `prior_residuals`' dense Jacobian gives as ``J^T J``, without its (B, 73, 69) products."""
    r, J, limits = _terms(body_pose, cfg)
    H = torch.einsum("bjac,bjad->bjcd", J, J)
    g = torch.einsum("bjac,bja->bjc", J, r)
    for j, r_lim, row in limits:
        H[:, j] += row[:, :, None] * row[:, None, :]
        g[:, j] += row * r_lim[:, None]
    return H, g, None if betas is None else cfg.betas * betas


def prior_residuals(body_pose: Tensor, betas: Tensor | None, cfg: PriorConfig) -> tuple[Tensor, Tensor]:
    """``body_pose`` (B, 23, 3, 3), ``betas`` (B, 10) or None when held -> residuals ``(B, N)`` and their
    Jacobian ``(B, N, 69 [+ 10])`` with respect to right increments of the 23 joint rotations
    (``R_j <- R_j exp(w_j)``) and, unless held, betas increments.

    Closed form (the log map's right Jacobian inverse): exact, and far cheaper than autograd through the
    rotation-to-axis-angle conversion.
    """
    B = body_pose.shape[0]
    r, J, limits = _terms(body_pose, cfg)
    res = [r.flatten(1)]
    # Block-diagonal over joints: row (j, a) depends on joint j's increment only.
    J_pose = r.new_zeros(B, 23, 3, 23, 3)
    J_pose.diagonal(dim1=1, dim2=3).copy_(J.permute(0, 2, 3, 1))
    jac = [J_pose.reshape(B, 69, 69)]
    lim, lim_jac = [], []
    for j, r_lim, row in limits:
        lim.append(r_lim)
        full = r.new_zeros(B, 23, 3)
        full[:, j] = row
        lim_jac.append(full.flatten(1))
    res.append(torch.stack(lim, 1))
    jac.append(torch.stack(lim_jac, 1))
    if betas is not None:
        res.append(cfg.betas ** 0.5 * betas)
        jac = [torch.cat([J, J.new_zeros(B, J.shape[1], 10)], 2) for J in jac]
        jac.append(torch.cat([r.new_zeros(B, 10, 69), cfg.betas ** 0.5 * torch.eye(10, dtype=r.dtype).expand(B, 10, 10)], 2))
    return torch.cat(res, 1), torch.cat(jac, 1)
