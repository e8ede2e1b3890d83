"""Rotation conversions and averaging, batched over any leading axes, in torch.

Conventions (the whole project uses these; conversions to other conventions live at file boundaries):
- Rotation matrices act on column vectors: ``x' = R @ x``. Shape ``(*, 3, 3)``.
- Axis-angle ("rotvec"): axis * angle in radians, shape ``(*, 3)``, as SMPL's ``body_pose``.
- Quaternions are scalar-last ``(x, y, z, w)``, shape ``(*, 4)``, as scipy and roma.
- 6D: the first two columns of the matrix, stored row-major as a ``(3, 2)`` block, i.e.
  ``[R00, R01, R10, R11, R20, R21]``, which is what SPIN/ReFit get from ``x.view(-1, 3, 2)``.

The conversions follow roma 1.8's (BSD-3, NAVER; themselves from SciPy) operation for operation, so the
numbers are the same, finite (values and gradients) at zero angle: importing roma itself loads
``torch._dynamo``, about 0.9 s and 70 MB in every command that fits.
"""

from __future__ import annotations

import math

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


def _sinc_threshold(x: torch.Tensor) -> float:
    """Below this magnitude sinc and its inverse use their Taylor series (the best first derivative)."""
    return 2.0 * torch.finfo(x.dtype).eps ** (1 / 6)


def _sinc(x: torch.Tensor) -> torch.Tensor:
    small = torch.abs(x) < _sinc_threshold(x)
    return torch.where(small, 1 - x**2 / 6 + x**4 / 120, torch.sin(x) / torch.where(small, torch.ones_like(x), x))


def _inv_sinc(x: torch.Tensor) -> torch.Tensor:
    small = torch.abs(x) < _sinc_threshold(x)
    return torch.where(small, 1 + x**2 / 6 + 7 * x**4 / 360, x / torch.where(small, torch.ones_like(x), torch.sin(x)))


def axis_angle_to_matrix(rotvec: torch.Tensor, epsilon: float = 1e-6) -> torch.Tensor:
    """``(*, 3)`` axis-angle -> ``(*, 3, 3)`` matrix: Rodrigues, first order below ``epsilon`` radians."""
    theta = torch.norm(rotvec, dim=-1)
    axis = rotvec / torch.clamp_min(theta[..., None], epsilon)  # clamped: finite gradients at zero angle
    kx, ky, kz = axis.unbind(-1)
    sin, one_minus_cos = torch.sin(theta), 1 - torch.cos(theta)
    xs, ys, zs = kx * sin, ky * sin, kz * sin
    xyc, xzc, yzc = kx * ky * one_minus_cos, kx * kz * one_minus_cos, ky * kz * one_minus_cos
    xxc, yyc, zzc = kx**2 * one_minus_cos, ky**2 * one_minus_cos, kz**2 * one_minus_cos
    rodrigues = torch.stack([1 - yyc - zzc, xyc - zs, xzc + ys, xyc + zs, 1 - xxc - zzc, -xs + yzc,
                             xzc - ys, xs + yzc, 1 - xxc - yyc], -1)
    x, y, z = rotvec.unbind(-1)
    one = torch.ones_like(x)
    first_order = torch.stack([one, -z, y, z, one, -x, -y, x, one], -1)
    R = torch.where((theta < epsilon)[..., None], first_order, rodrigues)
    return R.unflatten(-1, (3, 3))


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """``(*, 3, 3)`` matrix -> ``(*, 3)`` axis-angle with angle in ``[0, pi]``."""
    return quaternion_to_axis_angle(matrix_to_quaternion(R), normalize=False)


def quaternion_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """``(*, 4)`` unit quaternion (x, y, z, w) -> ``(*, 3, 3)``. The input is normalised first."""
    x, y, z, w = torch.nn.functional.normalize(quat, dim=-1).unbind(-1)
    x2, y2, z2, w2 = x * x, y * y, z * z, w * w
    xy, zw, xz, yw, yz, xw = x * y, z * w, x * z, y * w, y * z, x * w
    return torch.stack([x2 - y2 - z2 + w2, 2 * (xy - zw), 2 * (xz + yw), 2 * (xy + zw), -x2 + y2 - z2 + w2,
                        2 * (yz - xw), 2 * (xz - yw), 2 * (yz + xw), -x2 - y2 + z2 + w2], -1).unflatten(-1, (3, 3))


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """``(*, 3, 3)`` -> ``(*, 4)`` unit quaternion (x, y, z, w): Markley's variant of Shepperd's method, a unit
    quaternion even from a slightly non-orthonormal matrix."""
    (a11, a12, a13), (a21, a22, a23), (a31, a32, a33) = (row.unbind(-1) for row in R.transpose(-1, -2).unbind(-2))
    x = torch.stack([1 + a11 - a22 - a33, a12 + a21, a13 + a31, a23 - a32,
                     a21 + a12, 1 + a22 - a33 - a11, a23 + a32, a31 - a13,
                     a31 + a13, a32 + a23, 1 + a33 - a11 - a22, a12 - a21,
                     a23 - a32, a31 - a13, a12 - a21, 1 + a11 + a22 + a33], -1).unflatten(-1, (4, 4))  # 4 q q^T
    i = x.diagonal(dim1=-2, dim2=-1).argmax(dim=-1)
    x_i = torch.gather(x, -2, i[..., None, None].expand(*i.shape, 1, 4))[..., 0, :]
    return x_i / torch.norm(x_i, dim=-1, keepdim=True)


def axis_angle_to_quaternion(rotvec: torch.Tensor) -> torch.Tensor:
    """``(*, 3)`` -> ``(*, 4)`` (x, y, z, w)."""
    norms = torch.norm(rotvec, dim=-1, keepdim=True)
    return torch.cat([_sinc(norms / 2) / 2.0 * rotvec, torch.cos(norms / 2)], -1)


def quaternion_to_axis_angle(quat: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """``(*, 4)`` (x, y, z, w) -> ``(*, 3)``, the shortest arc (angle in ``[0, pi]``)."""
    if normalize:
        quat = torch.nn.functional.normalize(quat, dim=-1)
    quat = quat * ((quat[..., 3:] > 0).to(quat.dtype) * 2.0 - 1.0)
    half_angle = torch.atan2(torch.norm(quat[..., :3], dim=-1), quat[..., 3])
    return (2.0 * _inv_sinc(half_angle))[..., None] * quat[..., :3]


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
    shape = M.shape
    q = _horn_eigenvector(M.reshape(-1, 3, 3).double())
    # R is the adjoint of M -> N(M) at q q^T (Horn's identity read backwards)
    return ((q[..., :, None] * q[..., None, :]).flatten(-2) @ _HORN.T).unflatten(-1, (3, 3)).to(M.dtype).reshape(shape)


def _det3(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 0, :] * torch.linalg.cross(x[..., 1, :], x[..., 2, :], dim=-1)).sum(dim=-1)


def _horn_map() -> torch.Tensor:
    """``(9, 16)``: the linear map from a 3x3 ``M`` to Horn's symmetric 4x4 ``N(M)``, for which
    ``tr(R^T M) = q^T N(M) q`` with q (x, y, z, w) the unit quaternion of R."""
    (m11, m12, m13), (m21, m22, m23), (m31, m32, m33) = (row.unbind(-1) for row in
                                                         torch.eye(9, dtype=torch.float64).reshape(9, 3, 3).unbind(-2))
    return torch.stack([m11 - m22 - m33, m12 + m21, m13 + m31, m32 - m23,
                        m12 + m21, m22 - m11 - m33, m23 + m32, m13 - m31,
                        m13 + m31, m23 + m32, m33 - m11 - m22, m21 - m12,
                        m32 - m23, m13 - m31, m21 - m12, m11 + m22 + m33], -1)


_HORN = _horn_map()


def _horn_eigenvector(M: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``(B, 4)`` of the rotation maximising ``tr(R^T M)`` for float64 ``M`` ``(B, 3, 3)``: the
    eigenvector of N(M)'s largest eigenvalue, whose eigenvalues follow in closed form from M's singular values
    (O.K. Smith's trigonometric solution), refined by inverse iteration (roma's method: no batched SVD)."""
    eye3 = torch.eye(3, dtype=M.dtype)
    norm = M.flatten(-2).norm(dim=-1)[..., None, None]
    M = torch.where(norm == 0, eye3 / math.sqrt(3.0), M / norm)
    det = _det3(M)
    K = M.transpose(-1, -2) @ M - eye3 / 3
    p = K.flatten(-2).square().sum(dim=-1) / 6
    phi = torch.acos((_det3(K) / (2 * p**1.5).clamp_min(1e-300)).clamp(-1, 1)) / 3
    s1 = (1 / 3 + 2 * p.sqrt() * torch.cos(phi)).sqrt()
    prod = det / s1  # s2 * sign(det) s3
    sumsq = (1 - s1 * s1).clamp_min(2 * prod.abs())
    u, v = (sumsq + 2 * prod).sqrt(), (sumsq - 2 * prod).sqrt()
    A, lam, others = (M.flatten(-2) @ _HORN).unflatten(-1, (4, 4)), s1 + u, torch.stack([s1 - u, -s1 + v, -s1 - v], dim=-1)
    # A column of the spectral projector onto lam's eigenspace (eigenvalues within 1e-7 of it skipped) ...
    eye = torch.eye(4, dtype=A.dtype)
    norm_A = torch.linalg.matrix_norm(A)
    factors = A[..., None, :, :] - others[..., None, None] * eye
    separated = (lam[..., None] - others).abs() > 1e-7 * norm_A[..., None]
    factors = torch.where(separated[..., None, None], factors, eye)
    P = factors[..., 0, :, :] @ factors[..., 1, :, :] @ factors[..., 2, :, :]
    i = P.diagonal(dim1=-2, dim2=-1).argmax(dim=-1)
    q = torch.gather(P, -1, i[..., None, None].expand(*i.shape, 4, 1))

    def inverse_iteration(q, lam):  # ... refined twice, the second time shifted by q's Rayleigh quotient
        shift = lam + 1e-13 * norm_A
        q = torch.linalg.solve_ex(A - shift[..., None, None] * eye, q, check_errors=False)[0]
        return q / q.norm(dim=-2, keepdim=True)

    q = inverse_iteration(q, lam)
    q = inverse_iteration(q, (q * (A @ q)).sum(dim=(-2, -1)))
    return q[..., 0]


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
    return 2.0 * torch.asin(torch.clamp_max(torch.norm(R2 - R1, dim=[-1, -2]) * (1.0 / (2 * math.sqrt(2))), 1.0))
