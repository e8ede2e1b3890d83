"""Linearisation of the keypoint fitting energy and the damped Gauss-Newton steps built on it.

Energy of one frame, summed over views ``v`` and keypoints ``k``::

    E = sum_vk  c_vk * rho(|e_vk| * s_v) / sigma^2  +  |priors|^2

``e_vk`` is the reprojection error in pixels, ``s_v = depth_v / f_v`` converts it to metres at the body's
distance (so the balance against the priors does not depend on the resolution or the camera distance),
``c_vk`` the detector's confidence times the keypoint's weight, ``rho`` Geman-McClure with scale
``robust_scale`` (metres), minimised by iteratively reweighted least squares. Jacobians: the keypoints'
once per frame for all views (:mod:`mocap.fitting.kinematics`, only the keypoints the loss needs), chained
with each view's projection Jacobian; a view's Gauss-Newton system is then ``J_v^T W_v J_v`` plus the
priors' share.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mocap.body.keypoints import along_bones, place_along_bones
from mocap.body.model import BodyModel
from mocap.cameras import project, world_to_camera
from mocap.fitting.kinematics import pose_jacobian, project_jacobian
from mocap.fitting.params import NUM_ROT, BodyParams, step_size
from mocap.fitting.priors import PriorConfig, prior_normal


class BodyPoints:
    """The body points matching a detector's keypoints (joints or surface vertices), through the fast path.

    ``spec`` is a ``mocap.body.keypoints.KeypointSpec`` (or any object with ``joint_index`` (K,),
    ``vertex_index`` (K,), ``weights`` (K,), ``names``): keypoint k is joint ``joint_index[k]`` when that is
    >= 0 (or a point of a bone from there, `mocap.body.keypoints.along_bones`), else vertex ``vertex_index[k]``.
    """

    def __init__(self, body: BodyModel, spec):
        self.body, self.spec = body, spec
        joint = np.asarray(spec.joint_index)
        vertex = np.asarray(spec.vertex_index)
        is_joint = joint >= 0
        self.vertex_ids = np.unique(vertex[~is_joint]) if (~is_joint).any() else np.zeros(0, dtype=np.int64)
        slot = np.searchsorted(self.vertex_ids, vertex[~is_joint]) + 24
        gather = np.where(is_joint, joint, 0)
        gather[~is_joint] = slot
        self.gather = torch.as_tensor(gather, dtype=torch.long)
        self.weights = torch.as_tensor(np.asarray(spec.weights, dtype=np.float32))
        self.names = tuple(spec.names)
        self.bones = along_bones(spec)  # once here: the solver poses the points several times per iteration

    def __len__(self) -> int:
        return len(self.gather)

    def __call__(self, global_orient: Tensor, body_pose: Tensor, betas: Tensor, transl: Tensor) -> Tensor:
        """``(B, K, 3)`` world-frame keypoints."""
        joints, verts = self.body.points(global_orient, body_pose, betas, transl, vertex_ids=self.vertex_ids)
        return place_along_bones(torch.cat([joints, verts], 1)[:, self.gather], joints, self.bones)

    def of(self, p: BodyParams) -> Tensor:
        return self(p.global_orient, p.body_pose, p.betas, p.transl)


@dataclass(frozen=True)
class RobustConfig:
    sigma: float = 0.01
    """Expected keypoint error at the body, metres (turns the data term into unit-variance residuals)."""
    scale: float = 0.06
    """Geman-McClure scale, metres at the body: errors well beyond it stop pulling."""


@dataclass(frozen=True)
class Cameras:
    """Camera parameters as tensors, views stacked: K (V,3,3), dist (V,5), R (V,3,3), t (V,3)."""

    K: Tensor
    dist: Tensor
    R: Tensor
    t: Tensor

    @classmethod
    def from_rig(cls, rig, dtype=torch.float32) -> "Cameras":
        return cls(**rig.torch_params(dtype=dtype))

    def project(self, X: Tensor) -> Tensor:
        """``(B, K, 3)`` world -> ``(B, V, K, 2)`` pixels."""
        return project(X[:, None], self.K, self.dist, self.R, self.t)

    def depth(self, X: Tensor) -> Tensor:
        """``(B, K, 3)`` -> ``(B, V, K)`` depths."""
        return world_to_camera(X[:, None], self.R, self.t)[..., 2]


@dataclass(frozen=True)
class Linearization:
    """Everything one Gauss-Newton iteration needs, for ``B`` frames, ``V`` views, ``K`` keypoints, ``P`` unknowns.

    The keypoint rows are kept factored, the 3D keypoints' Jacobian apart from each view's projection
    Jacobian: the normal equations summed over views then cost ``3K`` rows per frame instead of ``2VK``
    (`data_normal_sum`). Other terms' rows (the silhouettes') are held whole in ``extra``."""

    J_X: Tensor  # (B, K, 3, P) Jacobian of the world keypoints
    J_uv: Tensor  # (B, V, K, 2, 3) Jacobian of the scaled reprojection residuals with respect to the keypoints
    r: Tensor  # (B, V, K, 2) scaled residuals, unit variance
    w: Tensor  # (B, V, K) IRLS weights times confidences (0 where missing)
    Hp: Tensor  # (B, P, P) the priors' J^T J
    gp: Tensor  # (B, P) and J^T r
    error_px: Tensor  # (B, V, K) reprojection error in pixels (NaN where not observed)
    extra: tuple[Tensor, Tensor, Tensor] | None = None  # rows (B, V, M, P), residuals and weights (B, V, M)

    def with_rows(self, J: Tensor, r: Tensor, w: Tensor) -> "Linearization":
        """This with another term's rows ``J`` (B, V, M, P), residuals ``r`` and weights ``w`` (B, V, M) added."""
        if self.extra is not None:
            J, r, w = (torch.cat([a, b], 2) for a, b in zip(self.extra, (J, r, w)))
        return dataclasses.replace(self, extra=(J, r, w))

    def data_normal(self) -> tuple[Tensor, Tensor]:
        """Per-view ``J^T W J`` (B, V, P, P) and ``J^T W r`` (B, V, P)."""
        B, V, K = self.w.shape
        J = torch.einsum("bvkij,bkjp->bvkip", self.J_uv, self.J_X).reshape(B, V, 2 * K, -1)
        r, w = self.r.reshape(B, V, 2 * K), self.w[..., None].expand(B, V, K, 2).reshape(B, V, 2 * K)
        if self.extra is not None:
            J, r, w = (torch.cat([a, b], 2) for a, b in zip((J, r, w), self.extra))
        Jw = J * w[..., None]
        # The gradient as a product, not an elementwise copy of ``Jw`` summed (a (B, V, 2K, P) temporary).
        return Jw.transpose(-1, -2) @ J, (Jw.transpose(-1, -2) @ r[..., None])[..., 0]

    def data_normal_sum(self) -> tuple[Tensor, Tensor]:
        """``J^T W J`` (B, P, P) and ``J^T W r`` (B, P) summed over the views: each keypoint's views first
        gathered into a 3 x 3 normal matrix and gradient in world coordinates, then chained once."""
        B, K, _, P = self.J_X.shape
        Jw = self.J_uv * self.w[..., None, None]  # (B, V, K, 2, 3)
        M = torch.einsum("bvkic,bvkid->bkcd", Jw, self.J_uv)  # (B, K, 3, 3)
        gX = torch.einsum("bvkic,bvki->bkc", Jw, self.r)  # (B, K, 3)
        J_X = self.J_X.reshape(B, 3 * K, P)
        H = J_X.transpose(-1, -2) @ (M @ self.J_X).reshape(B, 3 * K, P)
        g = (J_X.transpose(-1, -2) @ gX.reshape(B, 3 * K, 1))[..., 0]
        if self.extra is not None:
            J, r, w = (x.flatten(1, 2) for x in self.extra)  # (B, V M, P), (B, V M)
            Je = J * w[..., None]
            H = torch.baddbmm(H, Je.transpose(-1, -2), J)
            g = g + (Je.transpose(-1, -2) @ r[..., None])[..., 0]
        return H, g

    def prior_normal(self) -> tuple[Tensor, Tensor]:
        return self.Hp, self.gp


def geman_mcclure_weights(e: Tensor, scale: float) -> Tensor:
    """IRLS weights of Geman-McClure ``rho(e) = e^2 s^2 / (e^2 + s^2)`` at errors ``e``: 1 at 0, 1/4 at ``s``."""
    s2 = scale * scale
    return (s2 / (s2 + e * e)) ** 2


def keypoint_jacobian(points: BodyPoints, p: BodyParams, with_betas: bool) -> tuple[Tensor, Tensor]:
    """Jacobian ``(B, K, 3, P)`` with respect to a step, and the world keypoints ``(B, K, 3)`` at ``p``.

    Rotations and translation in closed form (:func:`mocap.fitting.kinematics.pose_jacobian`). At fixed
    rotations the keypoints are affine in betas (blend shapes and rest joints are linear, the kinematic
    chain then only rotates and translates), so the betas columns are exact differences of one batched
    forward pass at ``betas`` and ``betas + e_i``.
    """
    J, X = pose_jacobian(points.body, points.gather, points.vertex_ids, p.rotations, p.betas, p.transl, points.bones)
    if not with_betas:
        return J, X
    B = len(p)
    basis = torch.cat([torch.zeros(1, 10, dtype=p.betas.dtype), torch.eye(10, dtype=p.betas.dtype)])
    rep = lambda x: x[:, None].expand(B, 11, *x.shape[1:]).flatten(0, 1)
    X_i = points(rep(p.global_orient), rep(p.body_pose), (p.betas[:, None] + basis).flatten(0, 1),
                 rep(p.transl)).unflatten(0, (B, 11))  # at betas, then at betas + e_i
    return torch.cat([J, (X_i[:, 1:] - X_i[:, :1]).permute(0, 2, 3, 1)], -1), X


def prior_system(p: BodyParams, with_betas: bool, priors: PriorConfig) -> tuple[Tensor, Tensor]:
    """The priors' ``J^T J`` ``(B, P, P)`` and ``J^T r`` ``(B, P)`` at ``p`` (zero for the root and translation):
    block-diagonal, built from each joint's 3 x 3 block (`mocap.fitting.priors.prior_normal`)."""
    H_j, g_j, g_betas = prior_normal(p.body_pose, p.betas if with_betas else None, priors)
    B, P = len(p), step_size(with_betas)
    H, g = H_j.new_zeros(B, P, P), H_j.new_zeros(B, P)
    blocks = H[:, 3:NUM_ROT, 3:NUM_ROT].unflatten(1, (23, 3)).unflatten(3, (23, 3))  # (B, 23, 3, 23, 3) view
    blocks.diagonal(dim1=1, dim2=3).copy_(H_j.permute(0, 2, 3, 1))
    g[:, 3:NUM_ROT] = g_j.flatten(1)
    if with_betas:
        H[:, NUM_ROT + 3:, NUM_ROT + 3:] = priors.betas * torch.eye(10, dtype=H.dtype)
        g[:, NUM_ROT + 3:] = g_betas
    return H, g


def linearize(points: BodyPoints, cams: Cameras, p: BodyParams, uv: Tensor, conf: Tensor, with_betas: bool,
              priors: PriorConfig, robust: RobustConfig) -> Linearization:
    """Residuals and Jacobians at ``p`` (B frames) for observations ``uv`` (B, V, K, 2) px, ``conf`` (B, V, K).

    Missing keypoints have ``conf`` 0 (their ``uv`` may be anything finite). The 3D keypoints are
    differentiated once per frame and chained with each view's projection Jacobian.
    """
    B, V, K = conf.shape
    J_X, X = keypoint_jacobian(points, p, with_betas)  # (B,K,3,P), (B,K,3)
    Hp, gp = prior_system(p, with_betas, priors)
    proj, J_uv = project_jacobian(X, cams.K, cams.dist, cams.R, cams.t)  # (B,V,K,2), (B,V,K,2,3)
    with torch.no_grad():
        depth = cams.depth(X).median(-1).values.clamp_min(0.1)  # (B, V)
        s = (depth / cams.K[:, 0, 0] / robust.sigma)[..., None, None]  # pixels -> unit-variance residual
    r = (proj - uv) * s  # (B, V, K, 2)
    e_scaled = r.norm(dim=-1)  # (B, V, K) in units of sigma
    error_px = torch.where(conf > 0, e_scaled / s[..., 0], torch.nan)
    w = conf * geman_mcclure_weights(e_scaled * robust.sigma, robust.scale)
    return Linearization(J_X=J_X, J_uv=J_uv * s[..., None], r=r, w=w, Hp=Hp, gp=gp, error_px=error_px)


def damped_solve(H: Tensor, g: Tensor, damping: float) -> Tensor:
    """``-(H + damping * (diag(H) + 1e-6)) ^ -1 g``, batched; Levenberg-Marquardt's scaled damping."""
    A = H.clone()
    d = A.diagonal(dim1=-2, dim2=-1)
    d += damping * (d + 1e-6)  # in place: adding a (*, P, P) diagonal matrix cost as much as the copy
    L, info = torch.linalg.cholesky_ex(A)
    step = -torch.cholesky_solve(g[..., None], L)[..., 0]
    return torch.where((info == 0)[..., None], step, torch.zeros_like(step))


def shared_betas_solve(H: Tensor, g: Tensor, damping: float) -> Tensor:
    """Damped Gauss-Newton steps ``(B, P)`` of ``B`` frames whose last 10 unknowns (betas) are one vector shared
    by all frames: ``H`` (B, P, P), ``g`` (B, P) per-frame normal equations (the betas prior counted once over
    the frames). The betas step solves the Schur complement ``sum_t (D_t - C_t^T A_t^-1 C_t)``; each frame's
    pose step then follows from it. Frames whose block fails to factor are left out (zero step)."""
    d = torch.diagonal(H, dim1=-2, dim2=-1)
    H = H + torch.diag_embed(damping * (d + 1e-6))
    A, C, D = H[:, :-10, :-10], H[:, :-10, -10:], H[:, -10:, -10:]
    L, info = torch.linalg.cholesky_ex(A)
    ok = (info == 0).to(H.dtype)[:, None, None]
    AiC = torch.cholesky_solve(C, L) * ok  # (B, P-10, 10)
    Aiga = torch.cholesky_solve(g[:, :-10, None], L) * ok  # (B, P-10, 1)
    S = (ok * (D - C.transpose(-1, -2) @ AiC)).sum(0)
    rhs = (ok * (g[:, -10:, None] - C.transpose(-1, -2) @ Aiga)).sum(0)
    db = -torch.linalg.solve(S, rhs)  # (10, 1)
    da = -(Aiga + AiC @ db)
    return torch.cat([da[..., 0], db[:, 0].expand(len(g), 10)], -1) * ok[..., 0]


def joint_information(H_data: Tensor) -> Tensor:
    """``(*, P, P)`` data normal matrix -> ``(*, 24)`` trace of each joint's rotation block (joint 0 = root).

    How much a view's evidence constrains each joint's rotation: 0 for a joint it cannot see.
    """
    d = torch.diagonal(H_data, dim1=-2, dim2=-1)[..., :NUM_ROT]
    return d.unflatten(-1, (24, 3)).sum(-1)
