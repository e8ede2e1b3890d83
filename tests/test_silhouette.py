"""The silhouette term (mocap.fitting.silhouette): exact derivatives, masks that agree with the body leave it
in place, and a subject's shape recovered from silhouettes where keypoints alone cannot see it."""

import dataclasses
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from tests.fitting_data import body_spec, joints_spec, keypoints, motion, ring_rig
from mocap.body.model import load_body
from mocap.detect.masks import MASK_SIZE, mask_box
from mocap.fitting.config import FitConfig, SmoothingConfig
from mocap.fitting.params import BodyParams
from mocap.fitting.sequence import fit_sequence, fit_shape
from mocap.fitting.silhouette import SilhouetteConfig, Surface, prepare, sample_distance, silhouette_rows
from mocap.fitting.solver import Cameras, RobustConfig, keypoint_jacobian
from mocap.io.keypoints_h5 import Keypoints2D

NO_SMOOTHING = FitConfig(smoothing=SmoothingConfig(sigma_frames=0.0))


@pytest.fixture(scope="module")
def body():
    return load_body(body_spec())


def render_masks(body, truth: BodyParams, rig, kp: Keypoints2D) -> tuple[np.ndarray, np.ndarray]:
    """The true silhouettes as keypoints2d.h5 stores them: ``(F, V, S, S)`` uint8 over ``(F, V, 4)`` boxes,
    every triangle of the mesh filled in the box's pixel grid (an independent rasteriser: OpenCV's)."""
    verts = body(truth.global_orient, truth.body_pose, truth.betas, truth.transl).vertices.detach().double().numpy()
    faces = np.asarray(body.faces)
    F, V = kp.keypoints.shape[:2]
    boxes = mask_box(kp.keypoints).astype(np.float32)  # (F, V, 4)
    masks = np.zeros((F, V, MASK_SIZE, MASK_SIZE), np.uint8)
    fine = 4  # drawn 4x finer and area-averaged: a soft edge as a segmenter's, without fillPoly's half-pixel dilation
    for f in range(F):
        uv = rig.project(verts[f])  # (V, N, 2)
        for v in range(V):
            cell = (boxes[f, v, 2] - boxes[f, v, 0]) / MASK_SIZE / fine
            q = (uv[v] - boxes[f, v, :2]) / cell - 0.5  # fine pixel centres at integers
            canvas = np.zeros((MASK_SIZE * fine,) * 2, np.uint8)
            cv2.fillPoly(canvas, list(np.round(q[faces] * 16).astype(np.int32)), 255, lineType=cv2.LINE_8, shift=4)
            masks[f, v] = cv2.resize(canvas, (MASK_SIZE, MASK_SIZE), interpolation=cv2.INTER_AREA)
    return masks, boxes


def with_masks(kp: Keypoints2D, masks, boxes) -> Keypoints2D:
    return dataclasses.replace(kp, masks=masks, mask_boxes=boxes)


def _scene(body, F=4, seed=3, betas=None):
    rig = ring_rig(4)
    truth = motion(F, seed=seed)
    if betas is not None:
        truth = BodyParams(truth.global_orient, truth.body_pose, betas.expand(F, 10), truth.transl)
    kp = keypoints(body, joints_spec(), truth, rig)
    return rig, truth, kp, render_masks(body, truth, rig, kp)


def test_distance_gradient_matches_finite_differences(body):
    rig, truth, kp, (masks, boxes) = _scene(body, F=1)
    sil = prepare(masks, boxes, rig.image_sizes, SilhouetteConfig(), torch.float64)
    g = torch.Generator().manual_seed(0)
    box = sil.box[0, 0]
    # Points inside the box (off the mask and on it) and beyond it, away from bilinear cell edges.
    uv = box[:2] + (box[2:] - box[:2]) * (torch.rand(1, 1, 200, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2)
    d, grad = sample_distance(sil.index(slice(0, 1)), uv[:, :1].expand(1, 4, 200, 2).contiguous())
    eps = 1e-4
    for a in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[a] = eps
        fd = (sample_distance(sil, (uv + step).expand(1, 4, 200, 2))[0] - sample_distance(sil, (uv - step).expand(1, 4, 200, 2))[0]) / (2 * eps)
        assert torch.allclose(fd, grad[..., a], atol=1e-5), float((fd - grad[..., a]).abs().max())
    assert (d >= 0).all() and (d == 0).any() and (d > 0).any()


def test_rows_are_the_derivative_of_the_residuals(body):
    """The Jacobian of both terms against central differences through the body's own retraction."""
    rig, truth, kp, (masks, boxes) = _scene(body, F=2)
    b64 = load_body(body_spec(), dtype=torch.float64)
    cfg = SilhouetteConfig(vertices=200, candidates=200)  # every pairing moves with its own Jacobian: exact rows
    surface = Surface.of(b64, cfg)
    cams = Cameras.from_rig(rig, torch.float64)
    sil = prepare(masks, boxes, rig.image_sizes, cfg, torch.float64)
    # A body off the truth so that both terms have work to do.
    p = BodyParams(truth.global_orient.double(), truth.body_pose.double(), truth.betas.double() + 0.5,
                   truth.transl.double() + torch.tensor([0.03, -0.02, 0.01], dtype=torch.float64))
    scale = torch.full((2, 4), 3.0, dtype=torch.float64)
    robust = RobustConfig()
    res = lambda q: silhouette_rows(*keypoint_jacobian(surface.jacobian, q, True), surface.positions(q), surface,
                                    cams, sil, scale, cfg, robust)
    J, r, _ = res(p)
    g = torch.Generator().manual_seed(1)
    for col in torch.randint(0, J.shape[-1], (6,), generator=g).tolist() + [J.shape[-1] - 10, 74]:
        step = torch.zeros(len(p), J.shape[-1], dtype=torch.float64)
        step[:, col] = 1e-5
        fd = (res(p.retract(step, True))[1] - res(p.retract(-step, True))[1]) / 2e-5
        # Pairings of the fill term and bilinear cells may flip for a few rows at the step; the rest must agree.
        close = (fd - J[..., col]).abs() <= 1e-3 * (1 + J[..., col].abs())
        assert close.float().mean() > 0.97, (col, float(close.float().mean()))


def test_fill_weighs_only_the_fill_rows(body):
    """``fill`` scales the fill term's rows and residuals by its square root and leaves the inside term alone."""
    rig, truth, kp, (masks, boxes) = _scene(body, F=2)
    full = SilhouetteConfig(vertices=200, candidates=200)
    surface = Surface.of(body, full)
    cams, sil = Cameras.from_rig(rig), prepare(masks, boxes, rig.image_sizes, full, torch.float32)
    p = BodyParams(truth.global_orient, truth.body_pose, truth.betas + 0.5, truth.transl)
    rows = lambda cfg: silhouette_rows(*keypoint_jacobian(surface.jacobian, p, True), surface.positions(p), surface,
                                       cams, sil, torch.full((2, 4), 3.0), cfg, RobustConfig())
    (J1, r1, _), (Jq, rq, _) = rows(full), rows(dataclasses.replace(full, fill=0.25))
    N = full.vertices
    torch.testing.assert_close(Jq[:, :, :N], J1[:, :, :N])
    torch.testing.assert_close(rq[:, :, N:], 0.5 * r1[:, :, N:])
    torch.testing.assert_close(Jq[:, :, N:], 0.5 * J1[:, :, N:])
    assert r1[:, :, N:].abs().max() > 0.1  # the fill term has work to do here


def test_true_silhouettes_are_met_at_the_true_body(body):
    """At the true body both terms' residuals are within the masks' quantisation (a cell is about 3.5 px)."""
    rig, truth, kp, (masks, boxes) = _scene(body, F=3)
    sil = prepare(masks, boxes, rig.image_sizes, SilhouetteConfig(), torch.float32)
    cfg = SilhouetteConfig(weight=1.0)
    surface = Surface.of(body, cfg)
    J_X, X = keypoint_jacobian(surface.jacobian, truth, False)
    cell = float((sil.box[..., 2] - sil.box[..., 0]).mean()) / MASK_SIZE
    _, r, _ = silhouette_rows(J_X, X, surface.positions(truth), surface, Cameras.from_rig(rig), sil, torch.ones(3, 4),
                              cfg, RobustConfig())
    inside, fill = r[..., :400] * 400 ** 0.5, r[..., 400:] * 64 ** 0.5  # back to pixels
    assert float(inside.abs().mean()) < 0.1 * cell and float(inside.abs().max()) < 1.5 * cell
    assert float(fill.abs().median()) < 0.5 * cell and float(fill.abs().mean()) < cell


def test_true_silhouettes_fix_what_joints_cannot_see(body):
    """Noise-free joints and the true shape leave the limbs' twist free (the surface is off by ~17 mm); the true
    silhouettes of 4 views bring the surface closer."""
    rig, truth, kp, (masks, boxes) = _scene(body, F=6)
    X = lambda q: body(q.global_orient, q.body_pose, q.betas, q.transl).vertices
    pve = {}
    for name, k in (("joints", kp), ("silhouettes", with_masks(kp, masks, boxes))):
        res = fit_sequence(k, rig, body, joints_spec(), NO_SMOOTHING, truth.betas[0])
        pve[name] = float((X(res.params) - X(truth)).norm(dim=-1).mean() * 1000)
    assert pve["silhouettes"] < 0.75 * pve["joints"], pve


def test_shape_from_silhouettes_of_an_extreme_subject(body):
    """The demo's squat subject (betas near -1.8) seen by a detector whose points sit on the skin (each joint's
    nearest template vertex, 5-80 mm off the joint) and fitted as joints, as BlazePose's are: the keypoints alone
    bend the shape to explain their offsets; the silhouettes of 4 views hold the surface where it is."""
    betas = torch.tensor([0.81, -1.81, -1.78, 0.78, 1.01, -0.25, 0.21, -0.63, -0.24, 0.38])
    rig, truth, kp, (masks, boxes) = _scene(body, F=8, seed=3, betas=betas)
    v, J = body.layer.v_template.detach(), body.rest_joints(torch.zeros(1, 10))[0]
    on_skin = SimpleNamespace(format="smpl24", names=joints_spec().names, joint_index=-np.ones(24, dtype=np.int64),
                              vertex_index=torch.cdist(J, v).argmin(-1).numpy(), weights=np.ones(24))
    kp = keypoints(body, on_skin, truth, rig, noise=2.0, seed=1)
    rest = lambda b: body(torch.eye(3)[None], torch.eye(3).expand(1, 23, 3, 3), b[None]).vertices[0]
    err = {}
    for name, k in (("keypoints", kp), ("silhouettes", with_masks(kp, masks, boxes))):
        fitted = fit_shape(k, rig, body, joints_spec(), NO_SMOOTHING).betas
        err[name] = float((rest(fitted) - rest(betas)).norm(dim=-1).mean() * 1000)  # mm, rest-pose vertices
    assert err["silhouettes"] < 0.6 * err["keypoints"], err
    assert err["silhouettes"] < 10.0, err


def test_resample_matches_pasting_into_the_image_and_cropping_again():
    from mocap.detect.masks import resample, to_crop, to_image

    g = np.random.default_rng(0)
    mask = (cv2.GaussianBlur(g.random((128, 128)).astype(np.float32), (0, 0), 6) > 0.5).astype(np.uint8) * 255
    box, onto = np.array([100.0, 50.0, 420.0, 370.0]), np.array([180.0, 20.0, 560.0, 400.0])
    direct = resample(mask, box, onto).astype(float)
    via_image = to_crop(to_image(mask, box, (700, 500)), onto).astype(float)
    assert np.abs(direct - via_image).mean() < 3.0  # of 255: interpolation only
    assert (direct > 127).sum() > 1000


def test_a_person_in_front_does_not_push_the_body(body):
    """Another person covers part of the body in two views: that part is missing from its mask. Read through
    Detections2D.pick, the other person's mask marks it unknown, and the fit matches the unoccluded one."""
    from mocap.io.keypoints_h5 import Detections2D

    rig, truth, kp, (masks, boxes) = _scene(body, F=4)
    F, V, S = masks.shape[0], masks.shape[1], masks.shape[-1]
    cover = np.zeros_like(masks)
    cover[:, :2, 40:80, :] = 255  # a band across the torso of views 0 and 1
    cut = np.where(cover > 0, 0, masks).astype(np.uint8)
    det = Detections2D(kp.cameras, np.stack([kp.keypoints, kp.keypoints], 2), np.stack([kp.boxes, kp.boxes], 2),
                       np.ones((F, V, 2)), kp.image_sizes, kp.format, kp.names, kp.fps, masks=np.stack([cut, cover], 2),
                       mask_boxes=np.stack([boxes, boxes], 2))
    seen = det.pick(np.zeros((F, V), int))
    assert seen.occluders is not None and (seen.occluders[:, :2, 40:80] > 200).mean() > 0.95
    X = lambda q: body(q.global_orient, q.body_pose, q.betas, q.transl).vertices
    pve = {}
    for name, k in (("whole masks", with_masks(kp, masks, boxes)), ("occluded, known", seen),
                    ("occluded, unknown", with_masks(kp, cut, boxes))):
        res = fit_sequence(k, rig, body, joints_spec(), NO_SMOOTHING, truth.betas[0])
        pve[name] = float((X(res.params) - X(truth)).norm(dim=-1).mean() * 1000)
    assert pve["occluded, known"] < pve["whole masks"] + 1.0, pve
    assert pve["occluded, known"] < pve["occluded, unknown"], pve
