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
    """
    B, P = g.shape
    A = H + sys.blocks[0]
    d = A.diagonal(dim1=-2, dim2=-1)
    d += damping * (d + 1e-6)  # in place: adding a (B, P, P) diagonal matrix cost as much as the sum above
    low1, low2 = sys.blocks[1], sys.blocks[2]  # H[t+1, t], H[t+2, t]
    L0, L1, L2, info = [None] * B, [None] * B, [None] * B, [None] * B  # L[t, t], L[t, t-1], L[t, t-2]
    # M Lkk^-T as a right-side solve on Lkk^T: the left-side solve of M^T needed a transposed copy of each
    # block and cost 2.6x as much (75 x 75 blocks, float32, one thread).
    solve_t = lambda M, Lkk: torch.linalg.solve_triangular(Lkk.mT, M, upper=True, left=False)
    for t in range(B):
        S = A[t]
        if t >= 2:
            L2[t] = solve_t(low2[t - 2], L0[t - 2])
            S = torch.addmm(S, L2[t], L2[t].T, alpha=-1)  # S - L2 L2^T, the same floats in one call
        if t >= 1:
            M = torch.addmm(low1[t - 1], L2[t], L1[t - 1].T, alpha=-1) if t >= 2 else low1[t - 1]
            L1[t] = solve_t(M, L0[t - 1])
            S = torch.addmm(S, L1[t], L1[t].T, alpha=-1)
        L0[t], info[t] = torch.linalg.cholesky_ex(S)
    if torch.stack(info).any():  # checked once at the end: a failed block only spoils the later ones
        return torch.zeros_like(g)
    b = -(g + sys.g)
    y = [None] * B
    for t in range(B):
        r = b[t] - (L1[t] @ y[t - 1] if t >= 1 else 0) - (L2[t] @ y[t - 2] if t >= 2 else 0)
        y[t] = torch.linalg.solve_triangular(L0[t], r[:, None], upper=False)[:, 0]
    x = [None] * B
    for t in reversed(range(B)):
        r = y[t] - (L1[t + 1].T @ x[t + 1] if t + 1 < B else 0) - (L2[t + 2].T @ x[t + 2] if t + 2 < B else 0)
        x[t] = torch.linalg.solve_triangular(L0[t].T, r[:, None], upper=True)[:, 0]
    return torch.stack(x)
