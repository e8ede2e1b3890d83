"""A temporal prior inside the fit: a robust penalty on the 24 joints' accelerations, solved over a window.

Residual of a frame triple ``(t-1, t, t+1)`` with consecutive frame numbers, per joint ``j``::

    a_tj = (x_{t-1,j} - 2 x_tj + x_{t+1,j}) / (sigma * dt^2)

in world metres (the root's translation and orientation move every joint, so translation is covered too),
with Geman-McClure IRLS weights of scale ``robust_scale * sigma``: accelerations well beyond the expected
ones (a jump, a kick) stop being pulled back, so fast motion is not smoothed away. A static pose and a
constant-velocity motion have zero residuals, so the prior leaves them alone.

Frames of a window are coupled, so the Gauss-Newton system is block-banded (each frame talks to the two
before and after): :func:`window_solve` solves it exactly by a block-banded Cholesky factorisation. The
last two fitted frames of the previous window are fixed anchors, so windows join without a kink. Shapes: ``B`` frames, ``P`` unknowns per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import get_blas_funcs, get_lapack_funcs
from torch import Tensor

from mocap.body.model import PARENTS
from mocap.fitting.kinematics import pose_jacobian
from mocap.fitting.params import BodyParams
from mocap.fitting.solver import geman_mcclure_weights


@dataclass(frozen=True)
class TemporalConfig:
    accel_sigma: float = 10.0
    """Expected joint acceleration, m/s^2 (0 turns the prior off). Divided by fps^2 for the per-frame residual."""
    robust_scale: float = 10.0
    """Geman-McClure scale in units of ``accel_sigma``: faster changes of velocity stop being penalised."""


@dataclass(frozen=True)
class Window:
    """Where the frames of a batch sit in time, and the fixed frames just before it."""

    frames: Tensor  # (B,) frame numbers of the batch (increasing; a gap breaks the triples across it)
    fps: float
    anchor_frames: Tensor  # (A,) frame numbers of fixed earlier frames (A <= 2, may be 0)
    anchor_joints: Tensor  # (A, 24, 3) their joints, world metres


@dataclass(frozen=True)
class AccelSystem:
    """Gauss-Newton blocks of the acceleration penalty: ``H[t+d, t]`` for d = 0, 1, 2 and the gradient."""

    blocks: tuple[Tensor, Tensor, Tensor]  # (B, P, P), (B-1, P, P), (B-2, P, P)
    g: Tensor  # (B, P)


def _triples(window: Window) -> tuple[np.ndarray, int]:
    """Node indices ``(T, 3)`` into [anchors, batch] of consecutive-frame triples with a free frame, and A."""
    A = len(window.anchor_frames)
    nums = np.concatenate([window.anchor_frames.numpy(), window.frames.numpy()])
    k = np.arange(len(nums) - 2)
    ok = (nums[k + 1] == nums[k] + 1) & (nums[k + 2] == nums[k] + 2) & (k + 2 >= A)
    k = k[ok]
    return np.stack([k, k + 1, k + 2], 1), A


def accel_system(body, p: BodyParams, window: Window, cfg: TemporalConfig, P: int) -> AccelSystem | None:
    """The penalty's normal blocks and gradient at ``p`` (B frames) with respect to steps of size ``P``
    (rotations and translation as :mod:`mocap.fitting.params`; betas columns, if any, are zero: the subject's
    shape does not change over time). None when the window holds no frame triple."""
    tri, A = _triples(window)
    if cfg.accel_sigma <= 0 or len(tri) == 0:
        return None
    B = len(p)
    J, X = pose_jacobian(body, torch.arange(24), np.zeros(0, dtype=np.int64), p.rotations, p.betas, p.transl)
    scale = 1.0 / (cfg.accel_sigma / window.fps ** 2)
    nodes = torch.cat([window.anchor_joints.to(X), X])  # (A + B, 24, 3)
    coef = torch.tensor([1.0, -2.0, 1.0], dtype=X.dtype)
    t = torch.as_tensor(tri)
    a = (coef[None, :, None, None] * nodes[t]).sum(1) * scale  # (T, 24, 3) unit-variance residuals
    w = geman_mcclure_weights(a.norm(dim=-1), cfg.robust_scale)  # (T, 24)
    # D[k, b]: coefficient of free frame b in triple k.
    D = X.new_zeros(len(tri), B)
    for c in range(3):
        free = t[:, c] >= A
        D[torch.nonzero(free)[:, 0], t[free, c] - A] = coef[c]
    D = D * scale
    Jf = J.flatten(1, 2)  # (B, 72, 75)
    # The products over the columns that move a joint centre only (60 of 75), written into the blocks' places.
    Jm, place = Jf[..., _MOVING], (_MOVING[:, None] * P + _MOVING).flatten()
    blocks = []
    for d in range(3):
        n = max(B - d, 0)
        C = torch.einsum("kj,kt,kt->tj", w, D[:, d:], D[:, :n]).repeat_interleave(3, -1)  # (B-d, 72)
        block = ((Jm[d:] * C[..., None]).transpose(-1, -2) @ Jm[:n]).flatten(1)
        blocks.append(block.new_zeros(n, P * P).index_copy_(1, place, block).view(n, P, P))
    # d E / d step_b = sum_k D[k, b] w_kj J_bj^T a_kj (a already scaled): the joints' gradient first
    g = ((D.T @ (w[..., None] * a).flatten(1))[:, None] @ Jf)[:, 0]  # (B, 75)
    return AccelSystem(tuple(blocks), torch.nn.functional.pad(g, (0, P - Jf.shape[-1])))


def _moving_columns() -> Tensor:
    """``(60,)`` the step's columns that move some joint centre: the rotations of the joints that carry another
    joint, and the translation. A leaf joint's rotation (feet, head, hands) moves no joint centre, so the
    penalty's blocks are zero in its rows and columns."""
    parents = sorted({j for j in PARENTS if j >= 0})
    return torch.as_tensor([3 * j + a for j in parents for a in range(3)] + [72, 73, 74])


_MOVING = _moving_columns()


def frame_share(sys: AccelSystem) -> tuple[Tensor, Tensor]:
    """Per-frame ``(B, P, P)`` and ``(B, P)``: the penalty with neighbours held (for per-view updates)."""
    return sys.blocks[0], sys.g


def window_solve(H: Tensor, g: Tensor, sys: AccelSystem, damping: float) -> Tensor:
    """``-(H + Hacc + damping * diag) ^ -1 (g + gacc)`` over the whole window, exactly: ``H`` (B, P, P)
    block-diagonal per-frame normal matrices, ``g`` (B, P); zeros if the system is not positive definite.

    Block-banded Cholesky ``A = L L^T`` (``L`` has blocks ``L[t, t-2..t]``), one frame at a time: about
    ``5 P^3`` operations per frame. LAPACK's banded ``pbsv`` on the same matrix took 4 s per 40-frame
    window here, and block Gauss-Seidel sweeps converge too slowly for slow motions (the smooth error modes).
    The blocks go to BLAS and LAPACK through scipy, not torch: on 75 x 75 blocks torch's per-call cost (and
    the copy its Cholesky makes to zero the upper triangle) made the window 1.5x as slow. A C-ordered block
    is passed as its Fortran-ordered transpose (no copy): each factor is held as ``U = L^T``, each
    off-diagonal block as its transpose.
    """
    B, P = g.shape
    A = (H + sys.blocks[0]).numpy()  # a new array: factorised in place
    d = np.einsum("bii->bi", A)  # a writable view of the diagonals
    d += damping * (d + 1e-6)
    low1, low2 = sys.blocks[1].numpy(), sys.blocks[2].numpy()  # H[t+1, t], H[t+2, t]
    trsm, syrk, gemm, trsv, gemv = get_blas_funcs(("trsm", "syrk", "gemm", "trsv", "gemv"), (A,))
    (potrf,) = get_lapack_funcs(("potrf",), (A,))
    U, L1t, L2t = [None] * B, [None] * B, [None] * B  # L[t, t]^T, L[t, t-1]^T, L[t, t-2]^T (Fortran order)
    b = -(g + sys.g).numpy()
    y = [None] * B
    for t in range(B):
        S = A[t].T  # symmetric: the same matrix, Fortran-ordered; only its upper triangle is read and updated
        if t >= 2:
            L2t[t] = trsm(1.0, U[t - 2], low2[t - 2].T, side=0, lower=0, trans_a=1)  # L^-1 low2^T
            S = syrk(-1.0, L2t[t], beta=1.0, c=S, trans=1, lower=0, overwrite_c=1)  # S - L2 L2^T
        if t >= 1:
            M = low1[t - 1].T
            if t >= 2:  # (low1 - L2 L1'^T)^T
                M = gemm(-1.0, L1t[t - 1], L2t[t], beta=1.0, c=M.copy(order="F"), trans_a=1, overwrite_c=1)
            L1t[t] = trsm(1.0, U[t - 1], M, side=0, lower=0, trans_a=1)
            S = syrk(-1.0, L1t[t], beta=1.0, c=S, trans=1, lower=0, overwrite_c=1)
        U[t], info = potrf(S, lower=0, clean=1, overwrite_a=1)
        if info != 0:  # a failed block spoils the later ones
            return torch.zeros_like(g)
        r = b[t]  # forward substitution as the factors come: L y = b
        if t >= 1:
            r = gemv(-1.0, L1t[t], y[t - 1], beta=1.0, y=r, trans=1)
        if t >= 2:
            r = gemv(-1.0, L2t[t], y[t - 2], beta=1.0, y=r, trans=1)
        y[t] = trsv(U[t], r, lower=0, trans=1)
    x = [None] * B
    for t in reversed(range(B)):  # back substitution: L^T x = y
        r = y[t].copy()
        if t + 1 < B:
            r = gemv(-1.0, L1t[t + 1], x[t + 1], beta=1.0, y=r)
        if t + 2 < B:
            r = gemv(-1.0, L2t[t + 2], x[t + 2], beta=1.0, y=r)
        x[t] = trsv(U[t], r, lower=0)
    return torch.from_numpy(np.stack(x))
