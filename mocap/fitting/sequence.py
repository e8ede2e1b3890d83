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
from mocap.fitting.chunks import by_frames
from mocap.fitting.config import FitConfig
from mocap.fitting.gaps import finite_or_rest, interpolate, smooth
from mocap.fitting.initialize import initialize
from mocap.fitting.params import BodyParams
from mocap.fitting.silhouette import Silhouettes, Surface, prepare
from mocap.fitting.solver import BodyPoints, Cameras
from mocap.fitting.temporal import Window
from mocap.fitting.triangulation import triangulate
from mocap.fitting.updater import IterationStats, participating_views, refine
from mocap.io.keypoints_h5 import Keypoints2D

Progress = Callable[[int, int], None]

#: Frames at a time for work over the whole take that holds float64 copies.
_CHUNK = 1024
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
    raw: BodyParams | None = None  # the windows' fits before gaps are filled and smoothing (refits start there)


@dataclass(frozen=True)
class ShapeResult:
    betas: Tensor  # (10,)
    frames: np.ndarray  # (N,) frames used
    error_px: float  # mean reprojection error over those frames and views
    per_frame_betas: Tensor  # (N, 10)


@dataclass(frozen=True)
class _Observations:
    voting: Tensor  # (F, V)
    rig: CameraRig  # for triangulating (points3d)
    keypoints: np.ndarray  # (F, V, K, 3) the detections
    weights: np.ndarray  # (K,) keypoint weights
    min_confidence: float
    max_error: float  # triangulation's (TriangulationConfig)
    dtype: torch.dtype  # the body's
    masks: np.ndarray | None = None  # (F, V, S, S) uint8 person masks, with mask_boxes (F, V, 4)
    mask_boxes: np.ndarray | None = None
    image_sizes: np.ndarray | None = None  # (V, 2)
    occluders: np.ndarray | None = None  # (F, V, S, S) uint8 other people's masks on the same grid

    def at(self, idx: np.ndarray | slice) -> tuple[Tensor, Tensor]:
        """Pixels ``(B, V, K, 2)`` (0 where missing) and confidence times keypoint weight ``(B, V, K)`` (0 where
        missing or below the threshold) of frames ``idx``. Made for each window from the detections rather
        than held for the whole take (1.6 KB a frame: 28 MB for 18,000 frames x 4 views)."""
        return _pixels(self.keypoints[idx], self.weights, self.min_confidence, self.dtype)

    def points3d(self, idx: np.ndarray) -> Tensor:
        """``(B, K, 3)`` the keypoints of frames ``idx`` triangulated, NaN where not. Triangulated when a window
        is started (each frame on its own, so the same numbers as a whole take at once): a refit that keeps
        most windows (`mocap.fitting.windows`) triangulates only the ones it refits."""
        uv, conf = confident(self.keypoints[idx], self.weights, self.min_confidence)
        X, _ = triangulate(self.rig, uv, conf, max_error=self.max_error)
        return torch.as_tensor(X, dtype=self.dtype)


def confident(keypoints: np.ndarray, weights: np.ndarray, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """``(F, V, K, 3)`` detections -> pixels ``(F, V, K, 2)`` (NaN where not confident) and confidence times
    keypoint weight ``(F, V, K)`` (0 there), float64."""
    raw = keypoints.astype(np.float64)
    ok = np.isfinite(raw).all(-1) & (raw[..., 2] >= min_confidence)
    return np.where(ok[..., None], raw[..., :2], np.nan), np.where(ok, raw[..., 2], 0.0) * weights


def _pixels(keypoints: np.ndarray, weights: np.ndarray, min_confidence: float, dtype) -> tuple[Tensor, Tensor]:
    """`confident` as the fit reads it: tensors of ``dtype``, 0 for the NaN pixels (their confidence is 0)."""
    uv, conf = confident(keypoints, weights, min_confidence)
    return torch.as_tensor(np.nan_to_num(uv), dtype=dtype), torch.as_tensor(conf, dtype=dtype)


def _observations(kp: Keypoints2D, rig: CameraRig, points: BodyPoints, cfg: FitConfig) -> _Observations:
    if tuple(kp.cameras) != tuple(rig.names):
        raise InputDataError(f"keypoints cameras {', '.join(kp.cameras)} do not match the calibration's {', '.join(rig.names)}")
    if len(kp.names) != len(points):
        raise InputDataError(f"keypoints have {len(kp.names)} points per view, the {kp.format!r} body keypoints {len(points)}")
    weights, dt = points.weights.numpy(), points.body.dtype
    F, V = kp.keypoints.shape[:2]
    # by chunks of frames: a long take's float64 copies at once are ~100 MB
    voting = by_frames(lambda f: participating_views(_pixels(kp.keypoints[f], weights, cfg.min_confidence, dt)[1],
                                                     cfg.min_keypoints), F, torch.zeros(0, V, dtype=torch.bool), _CHUNK)
    use_masks = cfg.silhouette.enabled and kp.masks is not None
    return _Observations(voting, rig, kp.keypoints, weights, cfg.min_confidence, cfg.triangulation.max_error, dt,
                         kp.masks if use_masks else None,
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
def torch_threads(n: int):
    """torch's and the BLAS libraries' CPU thread counts set to ``n`` (0: unchanged) for the duration (the
    window solve calls scipy's BLAS on 75 x 75 blocks: its threads doubled the CPU for the same wall time)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n if n > 0 else None, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def batches(frames: np.ndarray, size: int):
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
    with torch_threads(cfg.threads):
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
    sil = cfg.silhouette  # the shape fit trusts the inside term more (SilhouetteConfig.shape_weight says why)
    cfg = cfg.replace(silhouette=dataclasses.replace(sil, weight=sil.shape_weight,
                                                     fill=sil.fill * sil.weight / sil.shape_weight))
    surface = _surface(obs, body, cfg)
    fitted = []
    for i, idx in enumerate(batches(good, cfg.batch_size)):
        p, _ = initialize(points, obs.points3d(idx), torch.zeros(10, dtype=body.dtype), False, cfg.ik, cfg.priors)
        if shared:  # one betas vector for the batch, starting from the mean of the IK fits
            p = BodyParams(p.global_orient, p.body_pose, p.betas.mean(0).expand_as(p.betas), p.transl)
        fitted.append(refine(points, cams, p, *obs.at(idx), cfg, hold_betas=False, shared_betas=shared,
                             silhouettes=_silhouettes(obs, surface, idx, cfg)))
        if progress:
            progress(min((i + 1) * cfg.batch_size, len(good)), len(good))
    p = BodyParams.cat(fitted)
    t = torch.as_tensor(good)
    w = obs.voting[t].sum(1).to(body.dtype)
    betas = (p.betas * w[:, None]).sum(0) / w.sum()
    held = BodyParams(p.global_orient, p.body_pose, betas.expand_as(p.betas), p.transl)
    px, _ = reprojection_error(points, cams, held, *obs.at(good))
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
    with torch_threads(cfg.threads):
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
    take = TakeFit(kp, rig, body, spec, cfg, betas, debug)
    for idx in batches(take.frames, cfg.batch_size):
        take.fit(idx, take.start(idx, start))
        if progress:
            progress(take.done, len(take.frames))
    return take.result()


class TakeFit:
    """A take fitted window by window (`fit_sequence`; `mocap.fitting.windows.refit_windows` refits some).

    Each window of ``batch_size`` frames seen by enough views is refined together with the temporal prior,
    anchored on the previous window's last two frames and started from its last pose, unless that window
    was lost (poor fit): then the next one starts from the triangulation alone, flagged reinitialised.
    ``betas`` None: the subject's shape is fitted first (`fit_shape`), then held; ``held``: whether given
    ``betas`` are reported as the user's (Shape ReFit) rather than a fit's; ``out``: the ``F`` frames' fits
    to write the windows' over (a refit's, `refit_windows`), else new ones."""

    def __init__(self, kp: Keypoints2D, rig: CameraRig, body: BodyModel, spec, cfg: FitConfig,
                 betas: Tensor | None = None, debug: bool = False, *, held: bool = True, out: BodyParams | None = None):
        self.kp, self.body, self.cfg, self.debug = kp, body, cfg, debug
        self.points = BodyPoints(body, spec)
        self.obs = obs = _observations(kp, rig, self.points, cfg)
        self.cams = Cameras.from_rig(rig, body.dtype)
        self.held = betas is not None and held
        if betas is None:
            betas = _fit_shape(kp, rig, body, spec, cfg, None, None, obs).betas
        self.betas = torch.as_tensor(betas, dtype=body.dtype).reshape(10)
        self.valid = (obs.voting.sum(1) >= cfg.min_views).numpy()
        self.frames = np.flatnonzero(self.valid)
        if len(self.frames) == 0:
            raise FittingError(f"no frame is seen by {cfg.min_views} views with {cfg.min_keypoints} keypoints each; "
                               "check the detections (mocap info) or lower fit.min_views")
        self.flags = np.where(self.valid, 0, FLAGS["too_few_views"]).astype(np.uint8)
        F = len(self.valid)
        if out is None:
            nan = torch.full((F,), float("nan"), dtype=body.dtype)
            out = BodyParams(nan[:, None, None].expand(F, 3, 3).clone(),
                             nan[:, None, None, None].expand(F, 23, 3, 3).clone(), self.betas.expand(F, 10),
                             nan[:, None].expand(F, 3).clone())
        else:  # the frames no window fits are empty, as in new ones
            for k in ("global_orient", "body_pose", "transl"):
                getattr(out, k)[torch.as_tensor(~self.valid)] = float("nan")
        self.out = out
        self.stats: list[tuple[np.ndarray, list[IterationStats]]] = []
        self.warm: BodyParams | None = None  # the last frame fitted, unless it was lost
        self.anchor = _no_anchor(body.dtype)
        self.surface = _surface(obs, body, cfg)
        self.done = 0

    def start(self, idx: np.ndarray, given: BodyParams | None = None) -> BodyParams:
        """Starting bodies of frames ``idx``: ``given``'s where finite (the take's betas, root joints kept in
        place), else triangulation and inverse kinematics from the last frame fitted."""
        t = torch.as_tensor(idx)
        given = _given_start(given, t, self.body, self.betas)
        cfg, X = self.cfg, None if given is not None and given[1].all() else self.obs.points3d(idx)
        init = None if X is None else initialize(self.points, X, self.betas, True, cfg.ik, cfg.priors, self.warm)[0]
        if self.warm is None and self.done > 0:  # the first batch's cold start is no reinitialisation
            self.flags[idx[0]] |= FLAGS["reinitialized"]
        return init if given is None else given[0] if init is None else given[0].where(given[1], init)

    def fit(self, idx: np.ndarray, p: BodyParams) -> None:
        """Refine frames ``idx`` from ``p`` and keep the result."""
        t, cfg, obs = torch.as_tensor(idx), self.cfg, self.obs
        batch_stats: list[IterationStats] | None = [] if self.debug else None
        window = Window(t, float(self.kp.fps), *self.anchor)
        uv, conf = obs.at(idx)
        p = refine(self.points, self.cams, p, uv, conf, cfg, hold_betas=True, stats=batch_stats,
                   window=window, silhouettes=_silhouettes(obs, self.surface, idx, cfg))
        _, at_body = reprojection_error(self.points, self.cams, p, uv, conf)
        poor = (at_body > cfg.lost_error).numpy()
        self.flags[idx[poor]] |= FLAGS["poor_fit"]
        if self.debug:
            self.stats.append((idx, batch_stats))
        self.keep(idx, p)

    def keep(self, idx: np.ndarray, p: BodyParams) -> None:
        """Frames ``idx`` fitted as ``p`` (their poor fits flagged): the next window starts from them."""
        t = torch.as_tensor(idx)
        lost = bool(self.flags[idx[-1]] & FLAGS["poor_fit"])
        self.warm = None if lost else p.index(slice(-1, None))
        # The next window's acceleration prior joins on to this one's last two frames unless it was lost.
        self.anchor = _no_anchor(self.body.dtype) if lost else (t[-2:], self.body.points(*_tail(p, 2))[0])
        for k in ("global_orient", "body_pose", "transl"):
            getattr(self.out, k)[t] = getattr(p, k)
        self.done += len(idx)

    def result(self) -> FitResult:
        """The take: gaps filled (``missing``), smoothed, its reprojection errors."""
        cfg, out, valid, obs = self.cfg, self.out, self.valid, self.obs
        if cfg.missing == "interpolate":
            out = interpolate(out, valid)
            self.flags[~valid] |= FLAGS["interpolated"]
        if cfg.smoothing.sigma_frames > 0:
            out = smooth(out, cfg.smoothing.sigma_frames)
        F, V = obs.voting.shape
        # by chunks of frames: the whole take's keypoints, projections and errors at once are ~10 KB a frame
        px = by_frames(lambda f: reprojection_error(self.points, self.cams, finite_or_rest(out.index(f)),
                                                    *obs.at(f))[0], F, torch.zeros(0, V))
        px = torch.where(torch.isfinite(out.transl).all(-1)[:, None], px, torch.nan)
        diagnostics = _diagnostics(self.stats, F, V, cfg.iterations) if self.debug else {}
        return FitResult(out, self.betas, px.numpy(), obs.voting.numpy() & valid[:, None], self.flags,
                         tuple(self.kp.cameras), float(self.kp.fps), self.held, diagnostics, raw=self.out)


def _no_anchor(dtype) -> tuple[Tensor, Tensor]:
    return torch.zeros(0, dtype=torch.long), torch.zeros(0, 24, 3, dtype=dtype)


def _tail(p: BodyParams, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    q = p.index(slice(-n, None))
    return q.global_orient, q.body_pose, q.betas, q.transl


def _diagnostics(stats, F: int, V: int, T: int) -> dict[str, np.ndarray]:
    err = np.full((T, F, V), np.nan, dtype=np.float32)
    step = np.full((T, F), np.nan, dtype=np.float32)
    spread = np.full((T, F), np.nan, dtype=np.float32)
    for idx, per_iter in stats:
        for i, s in enumerate(per_iter):
            err[i, idx], step[i, idx], spread[i, idx] = s.error_px.numpy(), s.step.numpy(), s.spread.numpy()
    return {"error_px": err, "step": step, "spread": spread}
