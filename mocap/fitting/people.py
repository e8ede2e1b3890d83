"""Several people in one session: which to fit, each person's detections, and what each fit records.

The people come from `mocap.fitting.tracking.associate`. Ids are numbered by how much each person is seen
(views times frames): person 0, the one seen by the most views for the most frames, is the main subject
written to ``output/smpl.npz``, unless ``--person`` names another. Every person fitted is also written to
``output/people/<id>/smpl.npz``. ``people:`` in session.yaml lists the ids to fit, ``max_people:`` keeps the
most seen; the main subject is always fitted.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mocap.cameras import CameraRig
from mocap.errors import ConfigError, FittingError
from mocap.fitting.chunks import by_frames
from mocap.fitting.config import FitConfig
from mocap.fitting.params import BodyParams
from mocap.fitting.sequence import FLAGS, FitResult, confident
from mocap.fitting.solver import BodyPoints
from mocap.fitting.association import AssociationConfig
from mocap.fitting.tracking import VIEW_REASONS, Association
from mocap.fitting.triangulation import triangulate
from mocap.io.keypoints_h5 import Keypoints2D


#: Frames either side of a frame whose triangulated keypoints tell where its own should be (`implausible_keypoints`;
#: 3 against 2 on 3,000 synthetic frames: the first refit changed 7 windows instead of 13, joints 4.02 / 4.01 mm).
NEIGHBOURS = 3

#: What each reason a view was left out means (`VIEW_REASONS`), for summaries.
REASON_TEXT = {
    "not_detected": "nobody detected",
    "too_few_keypoints": "too few confident keypoints",
    "other_person": "it sees only other people",
    "disagrees": "its detection agrees with no other view (another person or a wrong detection)",
    "far_from_fit": "its detection lies far from the body the other views agree on",
}


def person_dir(root: Path, person: int) -> Path:
    """``output/people/<id>/`` of a session."""
    return Path(root) / "output" / "people" / str(person)


def choose_people(assoc: Association, main: int | None = None, people: tuple[int, ...] | None = None,
                  max_people: int | None = None, source: str = "session.yaml") -> list[int]:
    """The ids to fit, the main subject first.

    Args:
        main: ``--person``: the main subject's id (default: person 0, the most seen).
        people: ids to fit (``people:``); all found when None.
        max_people: fit at most this many, the most seen first (``max_people:``).
    """
    n = assoc.num_people
    if n == 0:
        raise FittingError("no person is seen by two views that agree (association found nobody); check the "
                           "detections (mocap info, mocap viz overlay) and the calibration")
    found = f"found {n} (ids 0-{n - 1})" if n > 1 else "found 1 (id 0)"
    for pid, what in [(main, "--person")] + [(p, f"{source}: people") for p in people or ()]:
        if pid is not None and not 0 <= pid < n:
            raise ConfigError(f"{what} {pid}: no such person; {found}")
    if max_people is not None and max_people < 1:
        raise ConfigError(f"{source}: max_people {max_people}: must be at least 1")
    main = assoc.main_person() if main is None else main
    ids = [p for p in (people if people is not None else range(n)) if p != main]
    ids = [main] + sorted(set(ids), key=lambda p: -assoc.views_seen(p).sum())
    return ids[:max_people] if max_people is not None else ids


def _empty_outside(p: BodyParams, inside: np.ndarray) -> BodyParams:
    """Frames outside the person's track left NaN: the person is not there, nothing to interpolate."""
    nan = BodyParams(torch.full_like(p.global_orient, float("nan")), torch.full_like(p.body_pose, float("nan")),
                     p.betas, torch.full_like(p.transl, float("nan")))
    return p.where(torch.as_tensor(inside), nan)


def far_views(result: FitResult, rig: CameraRig, max_error: float) -> np.ndarray:
    """``(F, V)`` views whose mean reprojection error, in metres at the body's depth, exceeds ``max_error``
    and three times the median of the frame's other views (`AssociationConfig.max_view_error`)."""
    with torch.no_grad():
        X = np.nan_to_num(result.params.transl.double().numpy())  # (F, 3) near the pelvis: depth enough
    depth = np.einsum("vij,fj->fvi", rig.R, X)[..., 2] + rig.t[None, :, 2]
    err = result.error_px * depth / rig.K[None, :, 0, 0]
    V = err.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames no other view sees: NaN, nothing compared
        others = np.stack([np.nanmedian(np.delete(err, v, 1), 1) for v in range(V)], 1) if V > 1 \
            else np.full_like(err, np.nan)
    with np.errstate(invalid="ignore"):
        return (err > max_error) & (err > 3 * others) & result.views_used


def without_views(kp: Keypoints2D, drop: np.ndarray, keypoints: np.ndarray | None = None,
                  in_place: bool = False) -> Keypoints2D:
    """``kp`` with the detections of ``drop`` ``(F, V)`` removed, and the keypoints of ``keypoints``
    ``(F, V, K)``: a copy of the detections (~28 MB for 18,000 frames x 4 views x 33 keypoints), or, with
    ``in_place``, ``kp`` itself changed (its keypoints and ``detected`` arrays must be the caller's own)."""
    gone = drop[..., None] if keypoints is None else drop[..., None] | keypoints
    if in_place:
        kp.keypoints[gone] = np.nan
        kp.detected[drop] = False
        return kp
    return dataclasses.replace(kp, keypoints=np.where(gone[..., None], np.nan, kp.keypoints),
                               detected=kp.detected & ~drop)


def far_keypoints(X: np.ndarray, kp: Keypoints2D, rig: CameraRig, max_error: float,
                  min_confidence: float = 0.5, chunk: int = 1024) -> np.ndarray:
    """``(F, V, K)`` confident detected keypoints farther than ``max_error`` (metres at the keypoint's depth)
    from the fitted body's ``X`` ``(F, K, 3)`` (NaN frames: nothing flagged) seen from each view."""
    out = np.zeros(kp.keypoints.shape[:3], bool)
    for s in range(0, len(out), chunk):  # by chunks of frames: a long take's float64 projections at once are ~100 MB
        f = slice(s, s + chunk)
        Xf = np.asarray(X[f], dtype=np.float64)
        for v, cam in enumerate(kp.cameras):
            c = rig[cam]
            depth = c.to_camera(Xf)[..., 2]
            px = np.linalg.norm(c.project(Xf) - kp.keypoints[f, v, :, :2], axis=-1)
            with np.errstate(invalid="ignore"):
                out[f, v] = (px * depth / c.K[0, 0] > max_error) & (kp.keypoints[f, v, :, 2] >= min_confidence)
    return out


def implausible_keypoints(kp: Keypoints2D, rig: CameraRig, points: BodyPoints, cfg: FitConfig,
                          chunk: int = 1024) -> np.ndarray | None:
    """``(F, V, K)`` confident keypoints left out before the first fit: those the other views' consensus
    leaves out of the point they triangulate (`triangulate` with ``consensus``, ``cfg.triangulation``), and
    those farther than ``cfg.association.max_keypoint_error`` (metres at the keypoint's depth, as
    `far_keypoints` after the fit) from the median of their point triangulated in the `NEIGHBOURS` frames
    either side. None when that test is off (``max_keypoint_error`` 0).

    The fit's far test (`fit_without_far_views`) finds the same outliers only after a fit of the whole take,
    then refits every window that had one: on a synthetic take (5 % outliers) nearly every window, so each
    take was fitted about twice. An outlier seen by two views only agrees with the other view (nothing to
    outvote it), but not with the frames around. Left out here, on 3,000 synthetic frames (benchmarks/
    long_take.py) the first fit's far test found 7 keypoints instead of about 16,500, the first refit
    changed 7 of the 75 windows instead of all, 21.6 -> 13.8 CPU ms per frame, and the joints came closer
    to the truth (global MPJPE 4.06 -> 4.02 mm)."""
    limit = cfg.association.max_keypoint_error
    if limit <= 0:
        return None
    rig, weights = rig.subset(kp.cameras), points.weights.numpy()
    F, K, n = kp.keypoints.shape[0], kp.keypoints.shape[2], NEIGHBOURS
    out = np.zeros(kp.keypoints.shape[:3], bool)
    X = np.full((F + 2 * n, K, 3), np.nan, np.float32)  # NaN frames before and after the take
    for s in range(0, F, chunk):  # by chunks of frames: float64 copies of a long take's detections
        uv, conf = confident(kp.keypoints[s:s + chunk], weights, cfg.min_confidence)
        x, used = triangulate(rig, uv, conf, max_error=cfg.triangulation.max_error, consensus=True)
        out[s:s + chunk] = (conf > 0) & ~used & np.isfinite(x).all(-1)[:, None]
        X[n + s:n + s + len(x)] = x
    near = np.empty((F, K, 3), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no neighbour triangulated: NaN, nothing flagged
        for s in range(0, F, chunk):
            f = np.arange(s, min(s + chunk, F)) + n
            near[f - n] = np.nanmedian(np.stack([X[f + o] for o in range(-n, n + 1) if o], -1), -1)
    return out | far_keypoints(near, kp, rig, limit, cfg.min_confidence)


def keypoint_positions(points: BodyPoints, result: FitResult) -> np.ndarray:
    """``(F, K, 3)`` the fitted body's keypoints, metres (NaN for empty frames), in the body's dtype."""
    p = result.params
    with torch.no_grad():  # by chunks of frames: posing a long take at once holds ~5 KB a frame
        return by_frames(lambda f: points.of(p.index(f)).numpy(), len(p), np.zeros((0, len(points), 3), np.float32))


def fit_without_far_views(fit: Callable[..., tuple[FitResult, dict]], kp: Keypoints2D, rig: CameraRig,
                          cfg: AssociationConfig, points: Callable[[FitResult], np.ndarray] | None = None,
                          implausible: np.ndarray | None = None, in_place: bool = False
                          ) -> tuple[FitResult, dict, Keypoints2D, np.ndarray, int]:
    """``fit(kp)`` without the ``implausible`` keypoints ``(F, V, K)`` (`implausible_keypoints`), then refit up
    to ``cfg.far_passes`` times without the views `far_views` finds and the keypoints `far_keypoints` finds
    (``points``: the fit's keypoint positions ``(F, K, 3)``; None: views only), until none is left. A refit
    is ``fit(kp, previous, changed)``: the fit before, without its smoothed ``params`` (a refit starts from
    its windows' own fits, ``raw``; the smoothed ones held through it were 15 MB for 18,000 frames), and the
    ``(F,)`` frames whose detections changed since (`mocap.fitting.windows.refit_windows`). ``in_place``:
    ``kp``'s keypoints and ``detected`` arrays are the caller's to change (one take-long copy fewer).

    Returns the last fit, its extra metadata, the detections it used, the ``(F, V)`` views left out and the
    number of keypoints left out."""
    far = np.zeros(kp.keypoints.shape[:2], bool)
    dropped, own = 0, in_place
    if implausible is not None and implausible.any():
        kp, own = without_views(kp, far, implausible, in_place=own), True
    result, extra = fit(kp)
    for _ in range(cfg.far_passes):
        new = far_views(result, rig, cfg.max_view_error)
        bad = np.zeros(kp.keypoints.shape[:3], bool)
        if points is not None and cfg.max_keypoint_error > 0:
            bad = far_keypoints(points(result), kp, rig, cfg.max_keypoint_error) & ~new[..., None]
        if not new.any() and not bad.any():
            break
        far |= new
        dropped += int(bad.sum())
        # The caller's detections are copied once, unless they are its to change; each later pass changes
        # that copy (on a long take, two copies alive at once were a pass's peak of memory).
        kp, own = without_views(kp, new, bad, in_place=own), True
        previous, result = dataclasses.replace(result, params=None), None  # its smoothed params freed
        result, extra = fit(kp, previous, new.any(1) | bad.any((1, 2)))
    return result, extra, kp, far, dropped


def with_association(result: FitResult, assoc: Association, person: int, min_views: int,
                     far: np.ndarray | None = None) -> FitResult:
    """The person's fit with its association record: frames outside the track empty, per-view reasons
    (``FitResult.view_reasons``; ``far`` ``(F, V)``: views left out after a first fit, `far_views`), and frames
    whose views could not agree on the person flagged poor fit."""
    reasons = assoc.view_reasons(person)
    if far is not None:
        reasons[far] = VIEW_REASONS.index("far_from_fit")
    first, last = assoc.span(person)
    inside = (np.arange(len(reasons)) >= first) & (np.arange(len(reasons)) <= last)
    flags = result.flags.copy()
    used = (reasons == VIEW_REASONS.index("used")).sum(1)
    odd = np.isin(reasons, [VIEW_REASONS.index("disagrees"), VIEW_REASONS.index("far_from_fit")]).sum(1)
    flags[inside & (used < min_views) & (used + odd >= min_views)] |= FLAGS["poor_fit"]
    error = np.where(inside[:, None], result.error_px, np.nan)
    return dataclasses.replace(result, params=_empty_outside(result.params, inside), flags=flags, error_px=error,
                               views_used=result.views_used & inside[:, None], view_reasons=reasons, person=person)


def reason_counts(reasons: np.ndarray, cameras: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Frames per camera and reason a view was left out, ``{camera: {reason: n}}``; ``used`` and
    ``not_tracked`` are not counted, cameras never left out are omitted."""
    skip = (VIEW_REASONS.index("used"), VIEW_REASONS.index("not_tracked"))
    out = {}
    for v, cam in enumerate(cameras):
        counts = np.bincount(reasons[:, v], minlength=len(VIEW_REASONS))
        kinds = {VIEW_REASONS[k]: int(c) for k, c in enumerate(counts) if c and k not in skip}
        if kinds:
            out[cam] = kinds
    return out
