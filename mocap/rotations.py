"""Rotation conversions and averaging, batched over any leading axes, in torch.

Conventions (the whole project uses these; conversions to other conventions live at file boundaries):
- Rotation matrices act on column vectors: ``x' = R @ x``. Shape ``(*, 3, 3)``.
- Axis-angle ("rotvec"): axis * angle in radians, shape ``(*, 3)``, as SMPL's ``body_pose``.
- Quaternions are scalar-last ``(x, y, z, w)``, shape ``(*, 4)``, as scipy and roma.
- 6D: the first two columns of the matrix, stored row-major as a ``(3, 2)`` block, i.e.
  ``[R00, R01, R10, R11, R20, R21]``, which is what SPIN/ReFit get from ``x.view(-1, 3, 2)``.

roma does the conversions: its maps stay finite (values and gradients) at zero angle.
"""

from __future__ import annotations

import roma
import torch

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "rot6d_to_matrix",
    "matrix_to_rot6d",
    "project_to_so3",
    "chordal_mean",
    "geodesic_angle",
]


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """``(*, 3)`` axis-angle -> ``(*, 3, 3)`` matrix."""
    return roma.rotvec_to_rotmat(rotvec)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """``(*, 3, 3)`` matrix -> ``(*, 3)`` axis-angle with angle in ``[0, pi]``."""
    return roma.rotmat_to_rotvec(R)


def quaternion_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """``(*, 4)`` unit quaternion (x, y, z, w) -> ``(*, 3, 3)``. The input is normalised first."""
    return roma.unitquat_to_rotmat(torch.nn.functional.normalize(quat, dim=-1))


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """``(*, 3, 3)`` -> ``(*, 4)`` unit quaternion (x, y, z, w)."""
    return roma.rotmat_to_unitquat(R)


def axis_angle_to_quaternion(rotvec: torch.Tensor) -> torch.Tensor:
    """``(*, 3)`` -> ``(*, 4)`` (x, y, z, w)."""
    return roma.rotvec_to_unitquat(rotvec)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """``(*, 4)`` (x, y, z, w) -> ``(*, 3)``."""
    return roma.unitquat_to_rotvec(torch.nn.functional.normalize(quat, dim=-1))


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """``(*, 6)`` -> ``(*, 3, 3)`` by Gram-Schmidt on the two stored columns (Zhou et al. 2019).

    Written out rather than taken from roma because the element order must be SPIN/ReFit's exactly
    (their checkpoints regress this layout).
    """
    cols = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = cols[..., 0], cols[..., 1]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """``(*, 3, 3)`` -> ``(*, 6)``, the inverse of :func:`rot6d_to_matrix` on rotations."""
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def project_to_so3(M: torch.Tensor) -> torch.Tensor:
    """Closest rotation (Frobenius) to each ``(*, 3, 3)`` matrix: SVD with the determinant fixed to +1."""
    return roma.special_procrustes(M)


def chordal_mean(R: torch.Tensor, weights: torch.Tensor | None = None, dim: int = 0) -> torch.Tensor:
    """Weighted chordal L2 mean of rotations along ``dim``.

    Args:
        R: ``(..., N, ..., 3, 3)`` rotation matrices, ``N`` at position ``dim`` (counted before the
            trailing ``3, 3``).
        weights: non-negative weights broadcastable to ``R.shape[:-2]``; ``None`` for a plain mean.
            Weights are normalised along ``dim``; an all-zero slice falls back to the plain mean.
        dim: the axis that is averaged away.

    Returns:
        ``R.shape[:-2]`` without ``dim``, plus ``(3, 3)``: the rotation closest to the weighted mean of
        the matrices, i.e. the minimiser of ``sum_i w_i ||R_i - X||_F^2`` over SO(3).
    """
    if dim < 0:
        dim += R.dim() - 2
    if weights is None:
        weights = torch.ones(R.shape[:-2], dtype=R.dtype, device=R.device)
    weights = torch.broadcast_to(weights.to(R.dtype), R.shape[:-2])
    total = weights.sum(dim, keepdim=True)
    uniform = torch.full_like(weights, 1.0 / R.shape[dim])
    w = torch.where(total > 0, weights / total.clamp_min(torch.finfo(R.dtype).tiny), uniform)
    M = (w[..., None, None] * R).sum(dim)
    return project_to_so3(M)


def geodesic_angle(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Angle in radians ``(*)`` of the relative rotation ``R1^T R2``, in ``[0, pi]``."""
    return roma.rotmat_geodesic_distance(R1, R2)
