"""The feedback-update loop of multi-view fitting (ReFit section 3.5, Figure 4) with the keypoint updater.

At each iteration every view proposes an updated body from its own keypoints (one damped Gauss-Newton
step on its robust reprojection energy plus its share of the priors), and :func:`average_proposals`
merges the proposals into one world-frame body, which every view then sees at the next iteration.
``combine="joint"`` instead takes one Levenberg-Marquardt step on all views' energies at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mocap.fitting.averaging import Proposals, average_proposals
from mocap.fitting.config import FitConfig
from mocap.fitting.params import BodyParams
from mocap.fitting.silhouette import Silhouettes, Surface, with_silhouettes
from mocap.fitting.solver import BodyPoints, Cameras, damped_solve, joint_information, linearize, shared_betas_solve
from mocap.fitting.temporal import Window, accel_system, frame_share, window_solve


@dataclass(frozen=True)
class IterationStats:
    """Per-iteration diagnostics of ``B`` frames and ``V`` views (for ``fit.h5``)."""

    error_px: Tensor  # (B, V) mean reprojection error of the observed keypoints before the update
    step: Tensor  # (B,) norm of the rotation part of the merged update, radians
    spread: Tensor  # (B,) mean geodesic distance of the views' body-pose proposals to the average, radians


def participating_views(conf: Tensor, min_keypoints: int) -> Tensor:
    """``(B, V, K)`` confidences -> ``(B, V)``: views that see enough keypoints to propose an update."""
    return (conf > 0).sum(-1) >= min_keypoints


def refine(points: BodyPoints, cams: Cameras, p: BodyParams, uv: Tensor, conf: Tensor, cfg: FitConfig,
           hold_betas: bool, stats: list[IterationStats] | None = None, window: Window | None = None,
           shared_betas: bool = False, silhouettes: tuple[Surface, Silhouettes] | None = None) -> BodyParams:
    """Run ``cfg.iterations`` feedback-update iterations from ``p``.

    Args:
        p: ``B`` frames, world frame.
        uv: ``(B, V, K, 2)`` pixels, finite (anything where ``conf`` is 0).
        conf: ``(B, V, K)`` confidence times keypoint weight, 0 where not detected.
        hold_betas: Shape ReFit: betas are never updated and come out bit-identical.
        stats: when a list is given, one :class:`IterationStats` per iteration is appended.
        window: where the frames sit in time: turns on the acceleration prior (:mod:`mocap.fitting.temporal`),
            solved over the whole batch by the joint step, or per frame with neighbours held by the averaged one.
        shared_betas: with free betas and the joint step, one betas vector for all ``B`` frames (their betas
            must start equal), its prior counted once: the evidence of every frame adds up against the prior,
            instead of each frame's betas being shrunk by the whole prior and then averaged.
        silhouettes: the surface samples and the ``B`` frames' masks: adds the silhouette term
            (:mod:`mocap.fitting.silhouette`) to every view's evidence.
    """
    voting = participating_views(conf, cfg.min_keypoints)  # (B, V)
    n_voting = voting.sum(1)
    active = n_voting > 0
    with_betas = not hold_betas
    for _ in range(cfg.iterations):
        lin = linearize(points, cams, p, uv, conf, with_betas, cfg.priors, cfg.robust)
        if silhouettes is not None:
            lin = with_silhouettes(lin, silhouettes[0], cams, p, silhouettes[1], with_betas, cfg.silhouette, cfg.robust)
        Hp, gp = lin.prior_normal()  # (B, P, P), (B, P)
        acc = None if window is None else accel_system(points.body, p, window, cfg.temporal, gp.shape[-1])
        if cfg.combine == "joint":
            H, g = lin.data_normal_sum()
            H, g = H + Hp, g + gp
            if shared_betas and with_betas:
                step = shared_betas_solve(*_prior_once(H, g, p.betas, active, cfg.priors.betas), cfg.damping)
            elif acc is None:
                step = damped_solve(H, g, cfg.damping)
            else:
                step = window_solve(H, g, acc, cfg.damping)
            new = p.retract(step, with_betas)
            spread = torch.zeros(len(p))
        else:
            if acc is not None:
                Ha, ga = frame_share(acc)
                Hp, gp = Hp + Ha, gp + ga
            Hd, gd = lin.data_normal()  # (B, V, P, P), (B, V, P)
            new, spread = _averaged_update(p, lin, Hd, gd, Hp, gp, voting, n_voting, cams, cfg, with_betas)
        if hold_betas:
            new = BodyParams(new.global_orient, new.body_pose, p.betas, new.transl)
        if stats is not None:
            err = torch.nanmean(lin.error_px, -1)
            step = torch.linalg.matrix_norm(new.rotations - p.rotations).mean(-1)
            stats.append(IterationStats(err, torch.where(active, step, 0.0), spread))
        p = new.where(active, p)
    return p


def _prior_once(H: Tensor, g: Tensor, betas: Tensor, active: Tensor, weight: float) -> tuple[Tensor, Tensor]:
    """Per-frame systems ``(B, P, P)``, ``(B, P)`` whose betas rows carry ``1/n`` of the betas prior each (so
    it counts once over the ``n`` active frames); inactive frames contribute nothing. The Gaussian betas
    prior (``weight * |betas|^2``) is the only term of the priors on the betas columns."""
    keep = active.to(H.dtype)
    drop = weight * (1 - 1 / keep.sum().clamp_min(1))
    H, g = H.clone(), g.clone()
    H[:, -10:, -10:] -= drop * torch.eye(10, dtype=H.dtype)
    g[:, -10:] -= drop * betas
    return H * keep[:, None, None], g * keep[:, None]


def _averaged_update(p, lin, Hd, gd, Hp, gp, voting, n_voting, cams, cfg, with_betas):
    # Each view carries 1/n of the priors, so the views' proposals agree where the joint energy is minimal.
    share = (1.0 / n_voting.clamp_min(1).to(Hp.dtype))[:, None, None]
    steps = damped_solve(Hd + (Hp * share)[:, None], gd + (gp * share[..., 0])[:, None], cfg.view_damping)  # (B, V, P)
    prop = p.unsqueeze(1).retract(steps, with_betas)  # (B, V, ...)
    nan = torch.tensor(float("nan"), dtype=steps.dtype)
    keep = voting[..., None]
    proposals = Proposals(
        global_orient=torch.where(keep[..., None], cams.R @ prop.global_orient, nan),
        body_pose=torch.where(keep[..., None, None], prop.body_pose, nan),
        betas=torch.where(keep, prop.betas, nan),
        transl=torch.where(keep, prop.transl, nan),
    )
    weights = None
    if cfg.weighting == "information":
        info = joint_information(Hd) * voting[..., None]  # (B, V, 24)
        # Normalised per joint so that betas and translation (which use a view's mean weight) see each
        # joint's share, not the raw trace dominated by the root.
        weights = info / info.sum(1, keepdim=True).clamp_min(1e-12)
    go, bp, betas, transl = average_proposals(proposals, cams.R, weights, cfg.averaging)
    new = BodyParams(go, bp, betas, transl)
    spread = _proposal_spread(prop.body_pose, bp, voting)
    return new, spread


def _proposal_spread(proposed: Tensor, merged: Tensor, voting: Tensor) -> Tensor:
    from mocap.rotations import geodesic_angle

    d = geodesic_angle(proposed, merged[:, None]).mean(-1)  # (B, V)
    return (d * voting).sum(1) / voting.sum(1).clamp_min(1)
