"""Whole sequences: shape, batched per-frame fitting with warm starts, gaps, smoothing, quality.

Stage functions over :class:`mocap.io.keypoints_h5.Keypoints2D` and a :class:`~mocap.cameras.CameraRig`
whose cameras are in the keypoints' view order. Shapes: ``F`` frames, ``V`` views, ``K`` keypoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from mocap.body.model import BodyModel
from mocap.cameras import CameraRig
from mocap.errors import FittingError, InputDataError
from mocap.fitting.config import FitConfig
from mocap.fitting.initialize import initialize
from mocap.fitting.params import BodyParams
from mocap.fitting.silhouette import Silhouettes, Surface, prepare
from mocap.fitting.solver import BodyPoints, Cameras
from mocap.fitting.temporal import Window
from mocap.fitting.triangulation import triangulate
from mocap.fitting.updater import IterationStats, participating_views, refine
from mocap.io.keypoints_h5 import Keypoints2D
from mocap.rotations import axis_angle_to_matrix, matrix_to_axis_angle

Progress = Callable[[int, int], None]

#: Bits of ``FitResult.flags``.
FLAGS = {"too_few_views": 1, "interpolated": 2, "reinitialized": 4, "poor_fit": 8}


@dataclass(frozen=True)
class FitResult:
    """A fitted sequence in the world frame (metres, y up)."""

    params: BodyParams  # F frames; NaN rows for frames left empty
    betas: Tensor  # (10,) the subject's shape, shared by all frames
    error_px: np.ndarray  # (F, V) mean reprojection error of the confident keypoints, NaN where none
    views_used: np.ndarray  # (F, V) bool: views that proposed updates
    flags: np.ndarray  # (F,) uint8, bits of FLAGS
    cameras: tuple[str, ...]
    fps: float
    betas_held: bool  # True with a given shape (Shape ReFit)
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)  # per-iteration, with debug
    swaps: np.ndarray | None = None  # (F, V) left/right relabelling applied to the detections (fitting.swaps.SWAPS)
    view_reasons: np.ndarray | None = None  # (F, V) why each view serves the person or not (tracking.VIEW_REASONS)
    person: int | None = None  # the person's id in the session (fitting.people)


@dataclass(frozen=True)
class ShapeResult:
    betas: Tensor  # (10,)
    frames: np.ndarray  # (N,) frames used
    error_px: float  # mean reprojection error over those frames and views
    per_frame_betas: Tensor  # (N, 10)


@dataclass(frozen=True)
class _Observations:
    uv: Tensor  # (F, V, K, 2) pixels, 0 where missing
    conf: Tensor  # (F, V, K) confidence times keypoint weight, 0 where missing or below threshold
    X: Tensor  # (F, K, 3) triangulated keypoints, NaN where not triangulated
    voting: Tensor  # (F, V)
    masks: np.ndarray | None = None  # (F, V, S, S) uint8 person masks, with mask_boxes (F, V, 4)
    mask_boxes: np.ndarray | None = None
    image_sizes: np.ndarray | None = None  # (V, 2)
    occluders: np.ndarray | None = None  # (F, V, S, S) uint8 other people's masks on the same grid


def _observations(kp: Keypoints2D, rig: CameraRig, points: BodyPoints, cfg: FitConfig) -> _Observations:
    if tuple(kp.cameras) != tuple(rig.names):
        raise InputDataError(f"keypoints cameras {', '.join(kp.cameras)} do not match the calibration's {', '.join(rig.names)}")
    if len(kp.names) != len(points):
        raise InputDataError(f"keypoints have {len(kp.names)} points per view, the {kp.format!r} body keypoints {len(points)}")
    raw = kp.keypoints.astype(np.float64)
    ok = np.isfinite(raw).all(-1) & (raw[..., 2] >= cfg.min_confidence)
    conf = np.where(ok, raw[..., 2], 0.0) * points.weights.numpy()
    uv = np.where(ok[..., None], raw[..., :2], np.nan)
    X, _ = triangulate(rig, uv, conf, max_error=cfg.triangulation.max_error)
    dt = points.body.dtype
    conf_t = torch.as_tensor(conf, dtype=dt)
    use_masks = cfg.silhouette.enabled and kp.masks is not None
    return _Observations(torch.as_tensor(np.nan_to_num(uv), dtype=dt), conf_t, torch.as_tensor(X, dtype=dt),
                         participating_views(conf_t, cfg.min_keypoints), kp.masks if use_masks else None,
                         kp.mask_boxes if use_masks else None, np.asarray(kp.image_sizes),
                         kp.occluders if use_masks else None)


def _silhouettes(obs: _Observations, surface: Surface | None, idx: np.ndarray,
                 cfg: FitConfig) -> tuple[Surface, Silhouettes] | None:
    """The silhouette term's inputs for frames ``idx``; only views that vote there use their mask."""
    if surface is None:
        return None
    sil = prepare(obs.masks[idx], obs.mask_boxes[idx], obs.image_sizes, cfg.silhouette, surface.jacobian.body.dtype,
                  None if obs.occluders is None else obs.occluders[idx])
    return surface, dataclasses.replace(sil, valid=sil.valid & obs.voting[torch.as_tensor(idx)])


def _surface(obs: _Observations, body: BodyModel, cfg: FitConfig) -> Surface | None:
    return None if obs.masks is None else Surface.of(body, cfg.silhouette)


def reprojection_error(points: BodyPoints, cams: Cameras, p: BodyParams, uv: Tensor, conf: Tensor) -> tuple[Tensor, Tensor]:
    """Mean pixel error per frame and view ``(B, V)`` over keypoints with ``conf`` > 0 (NaN where none), and the
    per-frame median error converted to metres at the body ``(B,)``."""
    with torch.no_grad():
        X = points.of(p)
        e = (cams.project(X) - uv).norm(dim=-1)  # (B, V, K)
        seen = conf > 0
        px = torch.where(seen, e, 0).sum(-1) / seen.sum(-1)
        metres = e * cams.depth(X) / cams.K[:, 0, 0][:, None]
        at_body = torch.nanmedian(torch.where(seen, metres, torch.nan).flatten(1), 1).values
    return px, at_body


@contextlib.contextmanager
def _threads(n: int):
    """torch's CPU thread count set to ``n`` (0: unchanged) for the duration."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batches(frames: np.ndarray, size: int):
    for i in range(0, len(frames), size):
        yield frames[i:i + size]


def fit_shape(kp: Keypoints2D, rig: CameraRig, body: BodyModel, spec, cfg: FitConfig, frames: np.ndarray | None = None,
              progress: Progress | None = None) -> ShapeResult:
    """One betas vector for the subject, from ``frames`` (default: up to ``cfg.shape_frames`` frames spread
    over the sequence among those seen by enough views).

    With the joint step (``combine: joint``), the frames of a batch share one betas vector whose prior counts
    once (:func:`~mocap.fitting.solver.shared_betas_solve`). With averaged updates every frame is fitted with
    free betas by the multi-view loop (betas averaged over views at each iteration). The subject's betas are the
    mean over frames (batches) weighted by the number of views.
    """
    with _threads(cfg.threads):
        return _fit_shape(kp, rig, body, spec, cfg, frames, progress)


def _fit_shape(kp, rig, body, spec, cfg, frames, progress, obs: _Observations | None = None) -> ShapeResult:
    """``obs``: the sequence's observations when the caller has them (triangulating a long take again costs
    about as much as fitting its shape)."""
    points = BodyPoints(body, spec)
    obs = _observations(kp, rig, points, cfg) if obs is None else obs
    good = np.flatnonzero((obs.voting.sum(1) >= cfg.min_views).numpy())
    if frames is not None:
        good = np.intersect1d(good, np.asarray(frames))
    elif len(good) > cfg.shape_frames:
        good = good[np.linspace(0, len(good) - 1, cfg.shape_frames).round().astype(int)]
    if len(good) == 0:
        raise FittingError(f"no frame is seen by {cfg.min_views} views with {cfg.min_keypoints} keypoints each; cannot fit a shape")
    cams = Cameras.from_rig(rig, body.dtype)
    shared = cfg.combine == "joint"
    surface = _surface(obs, body, cfg)
    fitted = []
    for i, idx in enumerate(_batches(good, cfg.batch_size)):
        t = torch.as_tensor(idx)
        p, _ = initialize(points, obs.X[t], torch.zeros(10, dtype=body.dtype), False, cfg.ik, cfg.priors)
        if shared:  # one betas vector for the batch, starting from the mean of the IK fits
            p = BodyParams(p.global_orient, p.body_pose, p.betas.mean(0).expand_as(p.betas), p.transl)
        fitted.append(refine(points, cams, p, obs.uv[t], obs.conf[t], cfg, hold_betas=False, shared_betas=shared,
                             silhouettes=_silhouettes(obs, surface, idx, cfg)))
        if progress:
            progress(min((i + 1) * cfg.batch_size, len(good)), len(good))
    p = BodyParams.cat(fitted)
    t = torch.as_tensor(good)
    w = obs.voting[t].sum(1).to(body.dtype)
    betas = (p.betas * w[:, None]).sum(0) / w.sum()
    held = BodyParams(p.global_orient, p.body_pose, betas.expand_as(p.betas), p.transl)
    px, _ = reprojection_error(points, cams, held, obs.uv[t], obs.conf[t])
    return ShapeResult(betas, good, float(torch.nanmean(px)), p.betas)


def fit_sequence(kp: Keypoints2D, rig: CameraRig, body: BodyModel, spec, cfg: FitConfig, betas: Tensor | None = None,
                 progress: Progress | None = None, debug: bool = False, start: BodyParams | None = None) -> FitResult:
    """Fit every frame of ``kp``.

    Args:
        spec: the body keypoints matching ``kp.format`` (see :class:`~mocap.fitting.solver.BodyPoints`).
        betas: ``(10,)`` the subject's shape (Shape ReFit: held bit-exactly); fitted by :func:`fit_shape` when None.
        progress: called with (frames done, total).
        debug: keep per-iteration diagnostics in ``FitResult.diagnostics``.
        start: ``F`` starting bodies (world frame, e.g. ReFit's) used instead of triangulation and inverse
            kinematics where finite; their root joints are kept when their betas differ from the subject's.
    """
    with _threads(cfg.threads):
        return _fit_sequence(kp, rig, body, spec, cfg, betas, progress, debug, start)


def _given_start(start: BodyParams | None, t: torch.Tensor, body: BodyModel, betas: torch.Tensor):
    """The starting bodies of frames ``t`` with the sequence's ``betas`` (root joints kept in place) and the
    ``(B,)`` mask of frames that have a finite one; None without a start."""
    if start is None:
        return None
    s = start.index(t)
    shift = body.rest_joints(torch.nan_to_num(s.betas))[:, 0] - body.rest_joints(betas[None])[:, 0]
    s = BodyParams(s.global_orient, s.body_pose, betas.expand(len(t), 10), s.transl + shift)
    return s, torch.isfinite(s.transl).all(-1) & torch.isfinite(s.rotations).flatten(1).all(-1)


def _fit_sequence(kp, rig, body, spec, cfg, betas, progress, debug, start) -> FitResult:
    points = BodyPoints(body, spec)
    obs = _observations(kp, rig, points, cfg)
    cams = Cameras.from_rig(rig, body.dtype)
    F, V = obs.voting.shape
    held = betas is not None
    if betas is None:
        betas = _fit_shape(kp, rig, body, spec, cfg, None, None, obs).betas
    betas = torch.as_tensor(betas, dtype=body.dtype).reshape(10)
    valid = (obs.voting.sum(1) >= cfg.min_views).numpy()
    frames = np.flatnonzero(valid)
    if len(frames) == 0:
        raise FittingError(f"no frame is seen by {cfg.min_views} views with {cfg.min_keypoints} keypoints each; "
                           "check the detections (mocap info) or lower fit.min_views")
    flags = np.where(valid, 0, FLAGS["too_few_views"]).astype(np.uint8)
    nan = torch.full((F,), float("nan"), dtype=body.dtype)
    out = BodyParams(nan[:, None, None].expand(F, 3, 3).clone(), nan[:, None, None, None].expand(F, 23, 3, 3).clone(),
                     betas.expand(F, 10), nan[:, None].expand(F, 3).clone())
    stats: list[tuple[np.ndarray, list[IterationStats]]] = []
    warm: BodyParams | None = None
    anchor = _no_anchor(body.dtype)
    surface = _surface(obs, body, cfg)
    done = 0
    for idx in _batches(frames, cfg.batch_size):
        t = torch.as_tensor(idx)
        given = _given_start(start, t, body, betas)
        if given is None:
            p, _ = initialize(points, obs.X[t], betas, True, cfg.ik, cfg.priors, warm)
        else:
            s, has = given
            # Triangulation and IK only for the frames the given start lacks.
            p = s if has.all() else s.where(has, initialize(points, obs.X[t], betas, True, cfg.ik, cfg.priors, warm)[0])
        if warm is None and done > 0:  # the first batch's cold start is no reinitialisation
            flags[idx[0]] |= FLAGS["reinitialized"]
        batch_stats: list[IterationStats] | None = [] if debug else None
        window = Window(t, float(kp.fps), *anchor)
        p = refine(points, cams, p, obs.uv[t], obs.conf[t], cfg, hold_betas=True, stats=batch_stats, window=window,
                   silhouettes=_silhouettes(obs, surface, idx, cfg))
        _, at_body = reprojection_error(points, cams, p, obs.uv[t], obs.conf[t])
        poor = (at_body > cfg.lost_error).numpy()
        flags[idx[poor]] |= FLAGS["poor_fit"]
        warm = None if poor[-1] else p.index(slice(-1, None))
        # The next window's acceleration prior joins on to this one's last two frames unless it was lost.
        anchor = _no_anchor(body.dtype) if poor[-1] else (t[-2:], body.points(*_tail(p, 2))[0])
        if debug:
            stats.append((idx, batch_stats))
        for k in ("global_orient", "body_pose", "transl"):
            getattr(out, k)[t] = getattr(p, k)
        done += len(idx)
        if progress:
            progress(done, len(frames))
    if cfg.missing == "interpolate":
        out = _interpolate(out, valid)
        flags[~valid] |= FLAGS["interpolated"]
    if cfg.smoothing.sigma_frames > 0:
        out = smooth(out, cfg.smoothing.sigma_frames)
    px, _ = reprojection_error(points, cams, _finite_or_rest(out), obs.uv, obs.conf)
    px = torch.where(torch.isfinite(out.transl).all(-1)[:, None], px, torch.nan)
    diagnostics = _diagnostics(stats, F, V, cfg.iterations) if debug else {}
    return FitResult(out, betas, px.numpy(), obs.voting.numpy() & valid[:, None], flags, tuple(kp.cameras),
                     float(kp.fps), held, diagnostics)


def _no_anchor(dtype) -> tuple[Tensor, Tensor]:
    return torch.zeros(0, dtype=torch.long), torch.zeros(0, 24, 3, dtype=dtype)


def _tail(p: BodyParams, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    q = p.index(slice(-n, None))
    return q.global_orient, q.body_pose, q.betas, q.transl


def _finite_or_rest(p: BodyParams) -> BodyParams:
    ok = torch.isfinite(p.transl).all(-1)
    return p.where(ok, BodyParams.rest(len(p), p.transl.dtype))


def _interpolate(p: BodyParams, valid: np.ndarray) -> BodyParams:
    """Fill invalid frames: rotations by slerp, translation linearly, between the nearest valid frames;
    before the first and after the last valid frame, the nearest valid frame is held."""
    F = len(valid)
    good = np.flatnonzero(valid)
    t = np.arange(F)
    right = np.clip(np.searchsorted(good, t), 0, len(good) - 1)
    left = np.clip(right - 1, 0, len(good) - 1)
    left = np.where(good[right] <= t, right, left)
    i0, i1 = torch.as_tensor(good[left]), torch.as_tensor(good[right])
    span = (good[right] - good[left]).clip(min=1)
    alpha = torch.as_tensor(np.clip((t - good[left]) / span, 0, 1), dtype=p.transl.dtype)
    rot = p.rotations
    # slerp(R0, R1, a) = R0 exp(a log(R0^T R1)), per frame
    rel = matrix_to_axis_angle(rot[i0].transpose(-1, -2) @ rot[i1])
    new_rot = rot[i0] @ axis_angle_to_matrix(alpha[:, None, None] * rel)
    transl = p.transl[i0] + alpha[:, None] * (p.transl[i1] - p.transl[i0])
    return BodyParams.from_rotations(new_rot, p.betas, transl)


def smooth(p: BodyParams, sigma: float, chunk: int = 1024) -> BodyParams:
    """Gaussian smoothing over frames: translation directly, rotations in the tangent space at each frame
    (``R_f exp(sum_k w_k log(R_f^T R_{f+k}))``); NaN frames neither contribute nor change.

    ``chunk`` frames at a time: the neighbourhood terms are ``(F, W, 24, 3, 3)``, several hundred MB each for a
    long take (18,000 frames, W = 7) if made at once."""
    F = len(p)
    radius = max(1, int(round(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2).to(p.transl.dtype)
    ok = torch.isfinite(p.transl).all(-1)
    safe = _finite_or_rest(p)
    rot = safe.rotations  # (F, 24, 3, 3)
    new_rot, transl = [], []
    for start in range(0, F, chunk):
        f = torch.arange(start, min(start + chunk, F))
        near = f[:, None] + offsets
        nb = near.clamp(0, F - 1)  # (B, W) neighbour frames, edges clamped
        w = kernel * ((near >= 0) & (near < F)) * ok[nb] * ok[f][:, None]
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
        rel = matrix_to_axis_angle(rot[f][:, None].transpose(-1, -2) @ rot[nb])  # (B, W, 24, 3)
        new_rot.append(rot[f] @ axis_angle_to_matrix((w[..., None, None] * rel).sum(1)))
        transl.append((w[..., None] * safe.transl[nb]).sum(1))
    smoothed = BodyParams.from_rotations(torch.cat(new_rot), p.betas, torch.cat(transl))
    return smoothed.where(ok, p)


def _diagnostics(stats, F: int, V: int, T: int) -> dict[str, np.ndarray]:
    err = np.full((T, F, V), np.nan, dtype=np.float32)
    step = np.full((T, F), np.nan, dtype=np.float32)
    spread = np.full((T, F), np.nan, dtype=np.float32)
    for idx, per_iter in stats:
        for i, s in enumerate(per_iter):
            err[i, idx], step[i, idx], spread[i, idx] = s.error_px.numpy(), s.step.numpy(), s.spread.numpy()
    return {"error_px": err, "step": step, "spread": spread}
