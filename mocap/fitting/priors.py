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


def axis_angle_factor(R: Tensor) -> Tensor:
    """``theta / sin(theta)`` ``(*, 1)`` of rotations ``R`` (*, 3, 3), 1 at the identity."""
    angle = matrix_to_axis_angle(R).norm(dim=-1, keepdim=True)
    return torch.where(angle > 1e-4, angle / torch.sin(angle).clamp_min(1e-4), torch.ones_like(angle))


def _axis_angle(R: Tensor, factor: Tensor | None) -> Tensor:
    """Axis-angle of ``R`` (*, 3, 3) as ``factor * vee(R - R^T) / 2``, with ``factor`` from
    :func:`axis_angle_factor`, computed here when None or given as a constant.

    A constant factor (taken at the linearisation point) keeps the value exact there and drops from the
    derivative only the factor's own, second order near the identity: the prior's Jacobian then costs a
    fraction of the quaternion route's under jacfwd.
    """
    skew = torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1) / 2
    return (axis_angle_factor(R) if factor is None else factor) * skew


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


def prior_residuals(body_pose: Tensor, betas: Tensor | None, cfg: PriorConfig, factor: Tensor | None = None) -> Tensor:
    """``body_pose`` (B, 23, 3, 3), ``betas`` (B, 10) or None when held -> residuals ``(B, N)``.

    ``factor`` (B, 23, 1): see :func:`_axis_angle`; pass it (constant) when differentiating.
    """
    aa = _axis_angle(body_pose, factor)  # (B, 23, 3)
    sigma = POSE_SIGMA.to(aa)
    res = [cfg.pose ** 0.5 * (aa / sigma).flatten(1)]
    lim = torch.stack([torch.relu(s * aa[:, j, a]) for j, a, s in _LIMITS], 1)
    res.append(cfg.limits ** 0.5 * lim)
    if betas is not None:
        res.append(cfg.betas ** 0.5 * betas)
    return torch.cat(res, 1)
