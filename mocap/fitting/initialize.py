"""Initialisation of frames from triangulated keypoints: orientation and translation from the hips and
shoulders, then a short inverse-kinematics fit of the body's keypoints to the 3D points.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mocap.fitting.config import IKConfig
from mocap.fitting.params import BodyParams
from mocap.fitting.priors import PriorConfig
from mocap.fitting.solver import BodyPoints, damped_solve, geman_mcclure_weights, keypoint_jacobian, prior_system
from mocap.errors import FittingError

TORSO = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")


def torso_indices(names: tuple[str, ...]) -> list[int]:
    missing = [n for n in TORSO if n not in names]
    if missing:
        raise FittingError(f"the keypoint format lacks {', '.join(missing)}, needed to initialise the body")
    return [names.index(n) for n in TORSO]


def torso_frame(X: Tensor, names: tuple[str, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """``X`` (B, K, 3) triangulated keypoints (NaN where missing) -> global orientation (B, 3, 3) with SMPL's
    axes (x to the body's left, y up the spine, z forward), the hips' midpoint (B, 3) and a validity mask (B,)."""
    lh, rh, ls, rs = (X[:, i] for i in torso_indices(names))
    mid_hip = (lh + rh) / 2
    x = torch.nn.functional.normalize(lh - rh, dim=-1)
    up = (ls + rs) / 2 - mid_hip
    y = torch.nn.functional.normalize(up - (up * x).sum(-1, keepdim=True) * x, dim=-1)
    G = torch.stack([x, y, torch.linalg.cross(x, y)], -1)
    ok = torch.isfinite(G).all(-1).all(-1) & torch.isfinite(mid_hip).all(-1)
    return torch.where(ok[:, None, None], G, torch.eye(3, dtype=X.dtype)), mid_hip, ok


def steady_torso(G: Tensor, mid_hip: Tensor, ok: Tensor, radius: int = 5, max_angle: float = 0.8) -> tuple[Tensor, Tensor]:
    """Torso frames ``G`` (B, 3, 3) and hip midpoints (B, 3) of consecutive frames, with each frame that is
    missing (``ok`` False) or turned more than ``max_angle`` radians from the robust (chordal L1) mean of its
    ``radius`` neighbours on either side replaced by that mean (hips: the neighbours' median).

    A torso triangulated from one left/right-swapped or outlying keypoint turns the body by up to 180
    degrees, a start from which neither the IK nor the 2D fit recovers; real torsos do not turn that fast.
    """
    from mocap.fitting.averaging import rotation_median
    from mocap.rotations import geodesic_angle

    B = len(G)
    offsets = torch.arange(-radius, radius + 1)
    nb = (torch.arange(B)[:, None] + offsets).clamp(0, B - 1)  # (B, W)
    w = ok[nb].to(G.dtype)
    if not ok.any():
        return G, mid_hip
    ref = rotation_median(G[nb][:, :, None], w[..., None])[:, 0]  # (B, 3, 3)
    hips = torch.where(ok[nb][..., None], mid_hip[nb], torch.nan).nanmedian(1).values
    lonely = w.sum(1) == 0  # no valid neighbour: the batch's median instead
    ref = torch.where(lonely[:, None, None], rotation_median(G[None, :, None], ok[None, :, None].to(G.dtype))[:, 0], ref)
    hips = torch.where(lonely[:, None], mid_hip[ok].median(0).values, hips)
    bad = ~ok | (geodesic_angle(G, ref) > max_angle)
    return torch.where(bad[:, None, None], ref, G), torch.where(bad[:, None], hips, mid_hip)


def fit_to_points(points: BodyPoints, X: Tensor, p: BodyParams, hold_betas: bool, cfg: IKConfig,
                  priors: PriorConfig) -> BodyParams:
    """Inverse kinematics: damped Gauss-Newton on robust 3D distances to ``X`` (B, K, 3), NaN ignored."""
    seen = torch.isfinite(X).all(-1)  # (B, K)
    target = torch.nan_to_num(X)
    kw = points.weights.to(X.dtype) * seen
    for _ in range(cfg.iterations):
        J, Y = keypoint_jacobian(points, p, not hold_betas)  # (B, K, 3, P), (B, K, 3)
        r = (Y - target) / cfg.sigma
        w = kw * geman_mcclure_weights(r.norm(dim=-1) * cfg.sigma, cfg.robust_scale)  # (B, K)
        J, r = J.flatten(1, 2) / cfg.sigma, r.flatten(1)
        w3 = w.repeat_interleave(3, 1)
        Jw = J * w3[..., None]
        Hp, gp = prior_system(p, not hold_betas, priors)
        H = torch.baddbmm(Hp, Jw.transpose(1, 2), J)
        g = (Jw.transpose(1, 2) @ r[..., None])[..., 0] + gp
        p = p.retract(damped_solve(H, g, cfg.damping), not hold_betas)
    return p


def initialize(points: BodyPoints, X: Tensor, betas: Tensor, hold_betas: bool, cfg: IKConfig, priors: PriorConfig,
               warm: BodyParams | None = None) -> tuple[BodyParams, Tensor]:
    """Bodies for ``B`` frames from their triangulated keypoints ``X`` (B, K, 3).

    Global orientation and translation come from each frame's hips and shoulders (steadied by
    :func:`steady_torso`); body pose from ``warm``
    (e.g. the previous frame's fit, broadcast) or the rest pose; then :func:`fit_to_points`.
    Returns the bodies and a mask (B,) of frames whose torso was triangulated.
    """
    B = X.shape[0]
    G, mid_hip, ok = torso_frame(X, points.names)
    G, mid_hip = steady_torso(G, mid_hip, ok)
    rest = BodyParams.rest(B, X.dtype)
    pose = rest.body_pose if warm is None else warm.body_pose.expand(B, 23, 3, 3)
    betas = betas.expand(B, -1)
    pelvis = points.body.rest_joints(betas)[:, 0]
    transl = torch.where(torch.isfinite(mid_hip).all(-1, keepdim=True), mid_hip - pelvis, torch.zeros_like(mid_hip))
    p = BodyParams(G, pose.clone(), betas, transl)
    return fit_to_points(points, X, p, hold_betas, cfg, priors), ok
