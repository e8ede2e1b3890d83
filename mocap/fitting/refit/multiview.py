"""Multi-view ReFit (section 3.5): every view proposes an update, the proposals are averaged into one body,
and that body is reprojected into every view for the next feedback step.

Two averaging modes:

- ``"world"`` (default): each view's estimate is brought into the world frame through its camera's
  extrinsics — global orientation ``R_v^T G_v``, translation from the view's full-frame camera — and the
  views are merged by :func:`mocap.fitting.averaging.average_proposals` (chordal mean on SO(3) for every
  joint, mean betas, mean world translation; views weighted, missing views ignored). The merged body is
  then expressed in every camera again (``G_v = R_v G``, translation ``R_v X + t_v``) and reprojected with
  that camera's real intrinsics and distortion, so all views see one consistent body.
- ``"reference"``: the official ``REFIT_MV`` exactly — betas averaged; body pose averaged as raw 6D
  vectors; global orientation averaged in the world frame by ``U V^T`` of the mean matrix (no reflection
  guard); each view keeps its own crop camera (translation), and reprojection is an ideal pinhole. Kept
  for the equivalence test; the world translation reported at the end is the mean of the views'.

Shape ReFit: with ``betas`` given, the subject's betas replace the prediction at every step before reprojection.

Shapes: ``F`` frames, ``V`` views; inside the network the crops are flattened frame-major, ``N = B * V``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from mocap.cameras import CameraRig, project_camera_points
from mocap.errors import FittingError, InputDataError
from mocap.fitting.averaging import Proposals, average_proposals
from mocap.rotations import matrix_to_rot6d, rot6d_to_matrix

from .crop import CROP_SIZE, CropGeometry, geometry_of_map
from .model import Merge, Refit
from .smpl_head import RefitSMPL

__all__ = ["MULTIVIEW_MODES", "reference_merge", "world_merge", "RefitMultiviewResult", "fit_refit_multiview",
           "make_crops", "world_proposals"]

MULTIVIEW_MODES = ("world", "reference")


def _subject_betas(betas: Tensor | None, B: int, V: int, like: Tensor) -> Tensor | None:
    if betas is None:
        return None
    return betas.to(like).reshape(-1, 1, 10).expand(B, V, 10)


def reference_merge(R: Tensor, betas: Tensor | None = None) -> Merge:
    """The official ``REFIT_MV`` averaging; ``R (V, 3, 3)`` world-to-camera; ``betas`` (10,) or (B, 10) for Shape ReFit."""
    V = len(R)

    def merge(pose6d: Tensor, shape: Tensor, cam: Tensor):
        p = pose6d.reshape(-1, V, 144)
        B = p.shape[0]
        fixed = _subject_betas(betas, B, V, shape)
        shape = shape.reshape(B, V, 10).mean(1, keepdim=True).expand(B, V, 10) if fixed is None else fixed
        body = p[..., 6:].mean(1, keepdim=True).expand(B, V, 138)
        Rv = R.to(p)
        G_world = Rv.transpose(-1, -2) @ rot6d_to_matrix(p[..., :6])
        U, _, Vh = torch.linalg.svd(G_world.mean(1))
        G = Rv @ (U @ Vh)[:, None]
        return torch.cat([matrix_to_rot6d(G), body], -1).reshape(-1, 144), shape.reshape(-1, 10), cam

    return merge


def world_proposals(pose6d: Tensor, betas: Tensor, cam: Tensor, geom: CropGeometry, smpl: RefitSMPL, R: Tensor,
                    t: Tensor) -> Proposals:
    """Per-view estimates ``(B*V, ...)`` -> :class:`Proposals` with world-frame translations.

    A camera-frame body ``G_v``, translation ``T_v`` has its root joint at ``G_v`` applied about the rest
    pelvis ``J0``, i.e. at ``J0 + T_v`` in the camera; in the world that point is ``R_v^T (J0 + T_v - t_v)``
    and the world ``transl`` is that minus ``J0``.
    """
    V = len(R)
    rot = rot6d_to_matrix(pose6d.reshape(-1, 24, 6)).reshape(-1, V, 24, 3, 3)
    J0 = smpl.rest_pelvis(betas)
    root_cam = (J0 + geom.cam_to_translation(cam)).reshape(-1, V, 3)
    transl = ((root_cam - t)[..., None, :] @ R)[..., 0, :] - J0.reshape(-1, V, 3)
    return Proposals(rot[:, :, 0], rot[:, :, 1:], betas.reshape(-1, V, 10), transl)


def world_merge(smpl: RefitSMPL, geom: CropGeometry, R: Tensor, t: Tensor, weights: Tensor | None = None,
                betas: Tensor | None = None, averaging: str = "chordal") -> Merge:
    """World-consistent averaging (see the module docstring); ``weights (B, V, 24)`` as for
    :func:`average_proposals`; ``betas`` (10,) or (B, 10) for Shape ReFit."""
    V = len(R)

    def merge(pose6d: Tensor, shape: Tensor, cam: Tensor):
        go, body_pose, b, transl = average_proposals(world_proposals(pose6d, shape, cam, geom, smpl, R, t), R,
                                                     weights, mode=averaging)
        B = go.shape[0]
        fixed = _subject_betas(betas, B, 1, b)
        b = b if fixed is None else fixed[:, 0]
        J0 = smpl.rest_pelvis(b)
        trans_cam = (R @ (transl + J0)[:, None, :, None])[..., 0] + t - J0[:, None]  # (B, V, 3)
        rot = torch.cat([(R @ go[:, None])[:, :, None], body_pose[:, None].expand(B, V, 23, 3, 3)], 2)
        cam = geom.translation_to_cam(trans_cam.reshape(-1, 3))
        return matrix_to_rot6d(rot).reshape(-1, 144), b[:, None].expand(B, V, 10).reshape(-1, 10), cam

    return merge


@dataclass(frozen=True)
class RefitMultiviewResult:
    """One world-frame SMPL body per frame (NaN where no view saw the person)."""

    global_orient: np.ndarray  # (F, 3, 3) world frame
    body_pose: np.ndarray  # (F, 23, 3, 3)
    betas: np.ndarray  # (F, 10)
    transl: np.ndarray  # (F, 3) metres, world frame
    meta: dict = field(default_factory=dict)


def make_crops(images, center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops of ``V`` views of one frame, cut by :func:`mocap.detect.crops.crop_image`.

    Args:
        images: ``V`` BGR uint8 images ``(H, W, 3)`` (as OpenCV reads them); ``None`` for a missing view.
        center, scale: ``(V, 2)``, ``(V,)`` the boxes asked for (NaN: no box; the view gives zeros).

    Returns:
        ``(V, 3, 256, 256)`` ImageNet-normalised RGB crops, and the ``center (V, 2)``, ``scale (V,)`` of the
        crops actually cut (see :func:`geometry_of_map`), NaN for views without a crop.
    """
    from mocap.detect.crops import crop_image, image_tensor

    V = len(images)
    out = np.zeros((V, 3, CROP_SIZE, CROP_SIZE), np.float32)
    taken_center, taken_scale = np.full((V, 2), np.nan), np.full(V, np.nan)
    for v, image in enumerate(images):
        if image is not None and np.all(np.isfinite(center[v])) and np.isfinite(scale[v]) and 200 * scale[v] >= 1:
            crop, M = crop_image(image, center[v], float(scale[v]), CROP_SIZE)
            out[v] = image_tensor(crop).numpy()
            taken_center[v], taken_scale[v] = geometry_of_map(M)
    return out, taken_center, taken_scale


def _rig_geometry(rig: CameraRig, center: Tensor, scale: Tensor) -> tuple[CropGeometry, Tensor, Tensor]:
    """Crop geometry of ``(B, V)`` boxes with the rig's intrinsics, plus ``K (N, 3, 3)``, ``dist (N, 5)``."""
    B, V = scale.shape
    K = torch.as_tensor(rig.K, dtype=torch.float32)
    dist = torch.as_tensor(rig.dist, dtype=torch.float32)
    focal = ((K[:, 0, 0] + K[:, 1, 1]) / 2).expand(B, V).reshape(-1)
    geom = CropGeometry(center.reshape(-1, 2), scale.reshape(-1), focal, K[:, :2, 2].expand(B, V, 2).reshape(-1, 2))
    return geom, K.expand(B, V, 3, 3).reshape(-1, 3, 3), dist.expand(B, V, 5).reshape(-1, 5)


def fit_refit_multiview(crops: np.ndarray, center: np.ndarray, scale: np.ndarray, rig: CameraRig,
                        model: Refit | str | os.PathLike, *, body=None, iters: int = 10, mode: str = "world",
                        betas: np.ndarray | None = None, valid: np.ndarray | None = None, averaging: str = "chordal",
                        frames_per_batch: int = 4, progress: Callable[[int, int], None] | None = None,
                        ) -> RefitMultiviewResult:
    """Multi-view ReFit over ``F`` frames.

    Args:
        crops: ``(F, V, 3, 256, 256)`` ImageNet-normalised crops (:func:`make_crops`).
        center, scale: ``(F, V, 2)``, ``(F, V)`` the crops' squares in full-image pixels (scale = side / 200),
            as :func:`make_crops` returns them; NaN for views without a crop.
        rig: the calibrated cameras, in the views' order (metres, world-to-camera).
        model: a loaded :class:`Refit`, or the path of a released ``checkpoint_best.pth.tar``.
        body: SMPL body (spec or :class:`BodyModel`) when ``model`` is a path; ``None`` uses the checkpoint's.
        iters: feedback-update steps (the paper reports 5 and 10).
        mode: ``"world"`` (default) or ``"reference"`` (the official REFIT_MV; needs every view valid).
        betas: ``(10,)`` subject betas for Shape ReFit, or ``None`` to estimate them.
        valid: ``(F, V)`` bool, views where the person was detected; default all.
        averaging: ``"chordal"`` or ``"median"`` (world mode), see :func:`average_proposals`.
        frames_per_batch: frames per network call (V crops each).
        progress: ``callable(done_frames, total_frames)``.
    """
    if mode not in MULTIVIEW_MODES:
        raise InputDataError(f"unknown ReFit multi-view mode {mode!r}; use one of {', '.join(MULTIVIEW_MODES)}")
    if not isinstance(model, Refit):
        from .checkpoint import load_refit

        model = load_refit(model, body=body)
    crops = np.asarray(crops, dtype=np.float32)
    F_, V = crops.shape[:2]
    if crops.shape[2:] != (3, CROP_SIZE, CROP_SIZE) or len(rig) != V:
        raise InputDataError(f"crops have shape {crops.shape}, expected (F, {len(rig)}, 3, {CROP_SIZE}, {CROP_SIZE})")
    valid = np.ones((F_, V), bool) if valid is None else np.asarray(valid, bool)
    valid = valid & np.all(np.isfinite(center), -1) & np.isfinite(scale) & (np.asarray(scale) > 0)
    if mode == "reference" and not valid.all():
        raise FittingError("ReFit reference mode needs every view in every frame; use mode 'world' with missing views")
    # Views without a box still run (their weight is zero); give them a harmless box.
    center = np.where(valid[..., None], center, 0.0)
    scale = np.where(valid, scale, 1.0)
    params = rig.torch_params()
    R, t = params["R"].float(), params["t"].float()
    subject = None if betas is None else torch.as_tensor(np.asarray(betas, np.float32).reshape(10))
    out = {k: np.full((F_, *s), np.nan, np.float32) for k, s in
           (("global_orient", (3, 3)), ("body_pose", (23, 3, 3)), ("betas", (10,)), ("transl", (3,)))}
    model.eval()
    for f0 in range(0, F_, frames_per_batch):
        sl = slice(f0, min(F_, f0 + frames_per_batch))
        B = sl.stop - sl.start
        geom, K, dist = _rig_geometry(rig, torch.as_tensor(center[sl], dtype=torch.float32),
                                      torch.as_tensor(scale[sl], dtype=torch.float32))
        w = torch.as_tensor(valid[sl], dtype=torch.float32)[..., None].expand(B, V, 24)
        if mode == "world":
            merge = world_merge(model.smpl, geom, R, t, w, subject, averaging)
            projector = lambda X: project_camera_points(X, K, dist)  # noqa: E731
        else:
            merge, projector = reference_merge(R, subject), None
        with torch.no_grad():
            res = model(torch.from_numpy(crops[sl].reshape(-1, 3, CROP_SIZE, CROP_SIZE)), geom, iters, merge, projector)
            final = average_proposals(world_proposals(res.pose6d, res.betas, res.cam, geom, model.smpl, R, t), R, w)
        seen = valid[sl].any(1)
        for key, value in zip(("global_orient", "body_pose", "betas", "transl"), final):
            out[key][sl][seen] = value.numpy()[seen]
        if progress is not None:
            progress(sl.stop, F_)
    meta = {"method": "refit", "mode": mode, "iters": iters, "backbone": model.backbone_name,
            "shape_refit": betas is not None, "averaging": averaging}
    return RefitMultiviewResult(meta=meta, **out)
