"""ReFit over a session's footage (`mocap run --pipeline refit`): crops around the detector's boxes, the
multi-view loop of :mod:`.multiview`, one world-frame body per frame as a :class:`~mocap.fitting.sequence.FitResult`
(so it is saved, reported and refined exactly like the keypoint fit's).

Frames are read and fitted a few at a time, so memory does not grow with the sequence.
Shapes: ``F`` frames, ``V`` views, ``K`` keypoints.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mocap.body.model import BodyModel, load_body
from mocap.cameras import CameraRig
from mocap.errors import InputDataError, MissingDependencyError, MocapError
from mocap.fitting.config import PipelineConfig
from mocap.fitting.params import BodyParams
from mocap.fitting.sequence import FLAGS, FitResult, Progress, reprojection_error
from mocap.fitting.solver import BodyPoints, Cameras
from mocap.io.keypoints_h5 import Keypoints2D

from .checkpoint import DOWNLOAD_HINT, load_refit
from .multiview import fit_refit_multiview, make_crops
from .smpl_head import NUM_VERTICES

__all__ = ["refit_requirements", "fit_refit_session"]

_OPEN_BODY = ("open", "open_body_neutral")


def refit_requirements(checkpoint: str | os.PathLike | None, body_spec: str, gender: str,
                       need_checkpoint: bool = True) -> tuple[BodyModel, Path | None]:
    """The SMPL body and checkpoint path a ReFit run needs, or one :class:`MissingDependencyError` naming
    everything that is missing and where to get it.

    ``body_spec`` is the session's body; the bundled open body (another mesh, which cannot carry ReFit's
    SMPL-vertex markers) is replaced by ``smpl`` (``$MOCAP_SMPL_DIR``).
    """
    problems = []
    path = None
    if need_checkpoint:
        if checkpoint is None:
            problems.append(f"a ReFit checkpoint: {DOWNLOAD_HINT}")
        elif not (path := Path(checkpoint).expanduser()).is_file():
            problems.append(f"a ReFit checkpoint ({path} not found): {DOWNLOAD_HINT}")
    body = None
    spec = "smpl" if str(body_spec) in _OPEN_BODY else str(body_spec)
    try:
        body = load_body(spec, gender)
    except MocapError as e:
        problems.append(f"SMPL's body model files: {e}")
    if body is not None and body.layer.v_template.shape[0] != NUM_VERTICES:
        problems.append(f"SMPL's body model files: body {spec!r} has {body.layer.v_template.shape[0]} vertices, ReFit "
                        f"needs SMPL's {NUM_VERTICES}-vertex mesh; download SMPL from https://smpl.is.tue.mpg.de and "
                        "set MOCAP_SMPL_DIR (or body: in session.yaml) to its folder")
    if problems:
        raise MissingDependencyError("the ReFit pipeline needs " + "; and ".join(problems))
    return body, path


def _footage(root: Path, cameras: tuple[str, ...]) -> list[Path]:
    from mocap.session import Session

    session = Session.load(root)
    sources = {v.camera: v.info.path for v in session.views}
    missing = [c for c in cameras if c not in sources]
    if missing:
        raise InputDataError(f"{root}: no footage for camera(s) {', '.join(missing)}; the ReFit pipeline reads the "
                             "images (videos/<camera>.mp4 or images/<camera>/)")
    return [Path(sources[c]) for c in cameras]


def _observed(kp: Keypoints2D, points: BodyPoints, min_confidence: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Detected pixels ``(F, V, K, 2)`` (0 where unused) and weights ``(F, V, K)`` (0 where unused)."""
    raw = kp.keypoints.astype(np.float64)
    ok = np.isfinite(raw).all(-1) & (raw[..., 2] >= min_confidence)
    conf = np.where(ok, raw[..., 2], 0.0) * points.weights.numpy()
    dt = points.body.dtype
    return torch.as_tensor(np.where(ok[..., None], raw[..., :2], 0.0), dtype=dt), torch.as_tensor(conf, dtype=dt)


def fit_refit_session(root: Path, kp: Keypoints2D, rig: CameraRig, body: BodyModel, spec, pipeline: PipelineConfig,
                      checkpoint: str | os.PathLike, betas: torch.Tensor | None = None,
                      progress: Progress | None = None, first_frame: int = 0) -> tuple[FitResult, dict]:
    """Multi-view ReFit on every frame of a session; returns the fit and ReFit's settings (for the metadata).

    Frames where no view has a box are NaN (flagged ``too_few_views``, as are frames with fewer than
    ``fit.min_views`` views).

    Args:
        root: the session folder (its footage is read, from frame ``first_frame``: that of ``kp``'s frame 0).
        kp: detections, for the person boxes (and the reported keypoint reprojection error).
        rig: the cameras in ``kp``'s view order.
        body: an SMPL-topology body (:func:`refit_requirements`); spec: its points for ``kp.format``.
        pipeline: ``pipeline.refit`` drives the network; ``pipeline.fit.min_confidence`` / ``min_views`` the report.
        betas: ``(10,)`` the subject's shape (Shape ReFit), or ``None``: then the sequence's betas are the
            mean of ReFit's per-frame betas over the frames, and each frame's translation is corrected so
            that its root joint stays where ReFit put it.
    """
    from mocap.detect.crops import center_scale
    from mocap.io.video import read_frames

    cfg = pipeline.refit
    model = load_refit(checkpoint, body=body)
    F = kp.num_frames
    center, scale = center_scale(kp.boxes, cfg.box_margin)
    valid = kp.detected & np.isfinite(kp.boxes).all(-1)
    readers = [read_frames(p, first_frame, first_frame + F) for p in _footage(Path(root), kp.cameras)]
    held = None if betas is None else np.asarray(torch.as_tensor(betas).detach().cpu(), np.float32).reshape(10)
    parts = []
    for f0 in range(0, F, cfg.frames_per_batch):
        f1 = min(F, f0 + cfg.frames_per_batch)
        cut = [make_crops([next(r) for r in readers], center[f], scale[f]) for f in range(f0, f1)]
        crops, c, s = (np.stack(x) for x in zip(*cut))
        parts.append(fit_refit_multiview(crops, c, s, rig, model, iters=cfg.iterations, mode=cfg.mode, betas=held,
                                         valid=valid[f0:f1], averaging=cfg.averaging, frames_per_batch=f1 - f0))
        if progress is not None:
            progress(f1, F)
    dt = body.dtype
    go, bp, b, tr = (torch.as_tensor(np.concatenate([getattr(p, k) for p in parts]), dtype=dt)
                     for k in ("global_orient", "body_pose", "betas", "transl"))
    seen = torch.isfinite(tr).all(-1)
    if not seen.any():
        raise InputDataError(f"{root}: no frame has a person box in any view; check the detections (mocap info)")
    if betas is None:
        n = torch.as_tensor(valid.sum(1), dtype=dt)[seen]
        seq_betas = (b[seen] * n[:, None]).sum(0) / n.sum()
    else:
        seq_betas = torch.as_tensor(held, dtype=dt)
    # One shape for the sequence: move each frame so that its root joint stays where ReFit put it.
    shift = body.rest_joints(torch.nan_to_num(b))[:, 0] - body.rest_joints(seq_betas[None])[:, 0]
    params = BodyParams(go, bp, seq_betas.expand(F, 10), tr + shift)
    points = BodyPoints(body, spec)
    uv, conf = _observed(kp, points, pipeline.fit.min_confidence)
    safe = params.where(seen, BodyParams.rest(F, dt))
    px, _ = reprojection_error(points, Cameras.from_rig(rig, dt), safe, uv, conf)
    px = torch.where(seen[:, None], px, torch.nan)
    too_few = valid.sum(1) < pipeline.fit.min_views
    flags = np.where(too_few, FLAGS["too_few_views"], 0).astype(np.uint8)
    meta = {**parts[0].meta, "checkpoint": str(checkpoint)}
    return FitResult(params, seq_betas, px.numpy(), valid, flags, tuple(kp.cameras), float(kp.fps),
                     betas is not None), meta
