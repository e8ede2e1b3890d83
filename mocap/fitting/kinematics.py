"""Closed-form Jacobians of the body's keypoints and of the cameras' projection, for the Gauss-Newton solver.

Hand-written rather than ``torch.func.jacfwd`` through the body: forward-mode autograd pushes all 75
tangents through the whole kinematic chain (24 sequential 4x4 products per tangent and frame) and took 13x
as long (55 against 4.4 ms for 40 frames of BlazePose keypoints, 1 thread); the geometric Jacobian below
costs about one forward pass. Both are checked against autograd
through the exact exponential map in ``tests/test_fitting.py``. Betas: see ``solver.keypoint_jacobian``.

Conventions (see :mod:`mocap.fitting.params`): a step rotates joint ``i`` on the right, ``R_i <- R_i exp(w_i)``,
which turns everything below joint ``i`` about the joint's posed position ``p_i`` by the world axis ``G_i w_i``
(``G_i`` the joint's world rotation). A point ``x`` skinned with weights ``W_j`` moves by
``sum_{j below i} W_j (G_i w_i) x (y_j - p_i)``, ``y_j`` its position under joint ``j``'s transform alone;
a joint centre is a point carried rigidly by its parent. Pose-corrective blend shapes add their own term.
"""

from __future__ import annotations

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform
from torch import Tensor

from mocap.body.keypoints import place_along_bones
from mocap.body.model import PARENTS

_PARENTS = np.array(PARENTS)
_PARENTS[0] = 0


def _below() -> Tensor:
    """``(24, 24)`` ``below[j, i] = 1`` when joint ``j`` is ``i`` or one of its descendants."""
    m = np.eye(24)
    for j in range(1, 24):
        i = PARENTS[j]
        while i >= 0:
            m[j, i] = 1.0
            i = PARENTS[i] if i > 0 else -1
    return torch.as_tensor(m)


_BELOW = _below()
_SKEW_BASIS = torch.tensor([[[0, 0, 0], [0, 0, -1], [0, 1, 0]],
                            [[0, 0, 1], [0, 0, 0], [-1, 0, 0]],
                            [[0, -1, 0], [1, 0, 0], [0, 0, 0]]], dtype=torch.float64)  # [e_a]x


def _rotate(cols, u: Tensor) -> Tensor:
    """``sum_d cols[d] * u[..., d]`` in matmul's order (the same floats as ``M @ u`` for M's columns ``cols``)."""
    x = u.unbind(-1)
    return cols[0] * x[0][..., None] + cols[1] * x[1][..., None] + cols[2] * x[2][..., None]


def _rotate_all(G: Tensor, u: Tensor) -> Tensor:
    """``G_j u_k`` for every joint and point: ``G`` (B, 24, 3, 3), ``u`` (B, K, 3) -> (B, K, 24, 3).

    As three broadcast products (`_rotate`): a batched matmul of B x K x 24 separate 3 x 3 by 3 products
    copies ``G`` out K times and took 10x as long. ``G``'s columns are laid out whole (B, 1, 72) first, so
    that each product runs over 72 contiguous floats, not 3.
    """
    B, K = u.shape[:2]
    return _rotate(G.permute(0, 3, 1, 2).reshape(B, 3, 1, 72).unbind(1), u).view(B, K, 24, 3)


def _lever_arms(G: Tensor, a: Tensor, p: Tensor, W: Tensor, u: Tensor, transl: Tensor) -> tuple[Tensor, Tensor]:
    """Points ``X`` (B, K, 3) skinned with weights ``W`` (K, 24) from rest positions ``u`` (B, K, 3), and
    ``c`` (B, K, 24, 3): the lever arm about each joint's posed centre ``p`` of the part of the point that
    joint moves (zero for joints not above it). ``G``, ``a``: the joints' transforms (B, 24, 3, 3), (B, 24, 3)."""
    Wb = W @ _BELOW.to(W.dtype)  # (K, 24): the weight of each joint's descendants
    j = W.argmax(1)
    if torch.equal(W, torch.eye(24, dtype=W.dtype)[j]):  # rigid points (joint centres, bone points): one joint
        y = _rotate(G[:, j].unbind(-1), u) + a[:, j]
        return y + transl[:, None], Wb[..., None] * (y[:, :, None] - p[:, None])
    Wy = W[..., None] * (_rotate_all(G, u) + a[:, None])  # (B, K, 24, 3)
    c = torch.einsum("bkjc,ji->bkic", Wy, _BELOW.to(W.dtype)) - Wb[..., None] * p[:, None]
    return Wy.sum(2) + transl[:, None], c


def _axis_cross(G: Tensor, c: Tensor, out: Tensor) -> None:
    """``d X / d w_ia = (G_i e_a) x c_i`` into ``out`` (B, K, 3, 24, a): ``G`` (B, 24, 3, 3), ``c`` (B, K, 24, 3).

    Component by component, straight into the Jacobian: ``torch.linalg.cross`` needs both operands
    expanded to the full (B, K, 24, a, 3), then a permuted copy and one more to join the translation
    columns. Operands laid out so that each product runs over 72 contiguous floats (G's rows whole, ``c``'s
    components spread over ``a``). ``u1 v2 - u2 v1`` as ``fma(u1, v2, -(u2 v1))``, the rounding of
    ``torch.linalg.cross``.
    """
    rows = G.transpose(1, 2).contiguous()[:, None]  # (B, 1, 3, 24, a): component c of each axis G_i e_a
    g, n = rows.unbind(2), (-rows).unbind(2)
    x = [xc.expand(out.shape[:2] + (24, 3)).contiguous() for xc in c[..., None].unbind(-2)]  # (B, K, 24, a)
    for i, (j, k) in enumerate(((1, 2), (2, 0), (0, 1))):
        torch.addcmul(n[k] * x[j], g[j], x[k], out=out[:, :, i])


def pose_jacobian(body, gather: Tensor, vertex_ids: np.ndarray, rotations: Tensor, betas: Tensor,
                  transl: Tensor, bones=None) -> tuple[Tensor, Tensor]:
    """Keypoints and their Jacobian with respect to rotation and translation steps.

    Args:
        body: a :class:`~mocap.body.model.BodyModel`.
        gather: ``(K,)`` index into [24 joints, ``vertex_ids``] (see ``BodyPoints``); the keypoints in ``bones``
            (`mocap.body.keypoints.along_bones`) are put along their bone.
        rotations: ``(B, 24, 3, 3)`` global orientation then body pose; betas ``(B, 10)``; transl ``(B, 3)``.

    Returns:
        ``J`` ``(B, K, 3, 75)`` (24 x 3 rotation increments, then 3 translation) and keypoints ``(B, K, 3)``.
    """
    dt = rotations.dtype
    L = body.layer
    B = rotations.shape[0]
    J_rest = body.rest_joints(betas)  # (B, 24, 3)
    _, A = batch_rigid_transform(rotations, J_rest, body.parents, dtype=dt)
    G, a = A[..., :3, :3], A[..., :3, 3]  # (B, 24, 3, 3), (B, 24, 3)
    p = a + (G @ J_rest[..., None])[..., 0]  # posed joint centres
    # Joint centres: carried rigidly by their parent (the root by itself), rest position J_rest.
    W = [torch.eye(24, dtype=dt)[_PARENTS]]
    u = [J_rest]
    idx = torch.as_tensor(np.asarray(vertex_ids), dtype=torch.long)
    n_v = len(idx)
    if n_v:
        W.append(L.lbs_weights[idx])
        u.append(L.v_template[idx] + torch.einsum("kcb,nb->nkc", L.shapedirs[idx], betas))
    W, u = torch.cat(W), torch.cat(u, 1)  # (N, 24), (B, N, 3) with N = 24 + vertices
    cols = (idx[:, None] * 3 + torch.arange(3)).reshape(-1)
    if n_v and body.has_posedirs:
        PD = L.posedirs[:, cols].reshape(23, 9, n_v, 3)
        feat = (rotations[:, 1:] - torch.eye(3, dtype=dt)).reshape(B, 207)
        u = u.clone()
        u[:, 24:] = u[:, 24:] + (feat @ L.posedirs[:, cols]).reshape(B, n_v, 3)
    W, u = W[gather], u[:, gather]  # only the keypoints the loss needs
    if bones is not None:  # a point of a bone is carried by the bone's parent end, at its place between the ends
        k, j, t, _ = bones
        W = W.clone()
        W[k] = torch.eye(24, dtype=dt)[np.where(_PARENTS[j] == t, t, j)]
        u = place_along_bones(u, J_rest, bones)
    X, c = _lever_arms(G, a, p, W, u, transl)
    J = X.new_empty(B, len(gather), 3, 75)
    J_rot = J[..., :72].unflatten(-1, (24, 3))  # (B, K, 3, 24, a)
    _axis_cross(G, c, J_rot)
    J[..., 72:] = torch.eye(3, dtype=dt)
    if n_v and body.has_posedirs:
        is_v = gather >= 24
        dR = rotations[:, 1:, None] @ _SKEW_BASIS.to(dt)  # (B, 23, a, 3, 3): d R_i / d w_ia
        du = torch.einsum("biae,iekc->bkiac", dR.reshape(B, 23, 3, 9), PD)  # (B, n_v, 23, a, 3)
        slot = gather[is_v] - 24
        G_blend = torch.einsum("kj,bjcd->bkcd", W[is_v], G)  # (B, Kv, 3, 3)
        J_rot[:, is_v, :, 1:] += torch.einsum("bkcd,bkiad->bkcia", G_blend, du[:, slot])
    return J, X


def project_jacobian(X: Tensor, K: Tensor, dist: Tensor, R: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Pixels ``(B, V, N, 2)`` of world points ``X`` (B, N, 3) in ``V`` cameras (OpenCV model, as
    :func:`mocap.cameras.project`) and their Jacobian ``(B, V, N, 2, 3)`` with respect to ``X``."""
    Xc = torch.einsum("vij,bnj->bvni", R, X) + t[:, None]  # (B, V, N, 3)
    z = Xc[..., 2]
    x, y = Xc[..., 0] / z, Xc[..., 1] / z
    k1, k2, p1, p2, k3 = (dist[:, i, None] for i in range(5))
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    d_radial = k1 + r2 * (2 * k2 + 3 * k3 * r2)  # d radial / d r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    cross = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
    D = torch.stack([radial + 2 * x * x * d_radial + 2 * p1 * y + 6 * p2 * x, cross,
                     cross, radial + 2 * y * y * d_radial + 6 * p1 * y + 2 * p2 * x], -1).unflatten(-1, (2, 2))
    zero = torch.zeros_like(z)
    Dn = torch.stack([1 / z, zero, -x / z, zero, 1 / z, -y / z], -1).unflatten(-1, (2, 3))  # d(x, y) / d Xc
    K2 = K[:, None, :2, :2]
    uv = (K2 @ torch.stack([xd, yd], -1)[..., None])[..., 0] + K[:, None, :2, 2]
    J = K2 @ D @ Dn @ R[:, None]
    return uv, J
