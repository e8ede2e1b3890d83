"""ReFit without the reference data: geometry, look-up, multi-view merging, gradients, checkpoint loading.

A toy body of SMPL topology (random but well-formed) stands in for SMPL; the network has random weights.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mocap.body.model import PARENTS, BodyModel
from mocap.cameras import Camera, CameraRig, project_camera_points
from mocap.errors import FittingError, InputDataError, MissingDependencyError
from mocap.fitting.averaging import average_proposals
from mocap.fitting.refit import CropGeometry, Refit, fit_refit_multiview, load_refit, make_crops
from mocap.fitting.refit.model import lookup_windows
from mocap.fitting.refit.multiview import reference_merge, world_merge, world_proposals
from mocap.fitting.refit.smpl_head import RefitSMPL
from mocap.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix


def _toy_body() -> BodyModel:
    rng = np.random.default_rng(0)
    V = 6890
    J = np.zeros((24, 3))
    for j in range(1, 24):
        J[j] = J[PARENTS[j]] + rng.normal(0, 0.12, 3)
    part = np.arange(V) % 24
    weights = np.eye(24)[part]
    data = dict(
        v_template=J[part] + rng.normal(0, 0.04, (V, 3)),
        f=rng.integers(0, V, (13776, 3)),
        J_regressor=weights.T / weights.sum(0)[:, None],
        weights=weights,
        shapedirs=rng.normal(0, 0.01, (V, 3, 10)),
        posedirs=np.zeros((V, 3, 207)),
        kintree_table=np.stack([np.array(PARENTS) % 2**32, np.arange(24)]),
    )
    return BodyModel(data, "toy_smpl", "smpl")


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return _toy_body()


@pytest.fixture(scope="module")
def smpl(body) -> RefitSMPL:
    s = RefitSMPL()
    s.set_body(body, np.random.default_rng(1).dirichlet(np.ones(6890), 9))
    return s


def _rig(V: int = 3) -> CameraRig:
    cams = []
    for v in range(V):
        R = axis_angle_to_matrix(torch.tensor([0.1 * v, 2 * math.pi * v / V + 0.3, 0.05])).double().numpy()
        # Camera v looks at the point (0, 0.2, 0) from 4 m away.
        t = np.array([0.05 * v, -0.1, 4.0]) - R @ np.array([0.0, 0.2, 0.0])
        K = np.array([[1100.0 + 10 * v, 0, 950.0], [0, 1105.0, 545.0], [0, 0, 1]])
        cams.append(Camera(f"c{v}", K, [0.02 * v, -0.01, 0.001, 0.0, 0.0], R, t, (1920, 1080)))
    return CameraRig(tuple(cams))


def _geom(B: int, V: int) -> CropGeometry:
    g = torch.Generator().manual_seed(2)
    N = B * V
    return CropGeometry(torch.tensor([900.0, 500.0]) + 80 * torch.rand(N, 2, generator=g),
                        2.5 + torch.rand(N, generator=g), 1100.0 + 10 * torch.rand(N, generator=g),
                        torch.tensor([950.0, 545.0]).expand(N, 2))


def test_crop_camera_round_trip_and_pinhole_projection():
    geom = _geom(2, 2)
    cam = torch.tensor([[0.9, 0.1, -0.2], [0.7, 0.0, 0.3], [1.1, -0.3, 0.1], [0.8, 0.2, 0.2]])
    assert torch.allclose(geom.translation_to_cam(geom.cam_to_translation(cam)), cam, atol=1e-5)
    # The pinhole equals OpenCV's model with K = [[f, 0, cx], [0, f, cy]] and no distortion.
    X = torch.randn(4, 5, 3) * 0.3 + torch.tensor([0.0, 0.0, 5.0])
    K = torch.zeros(4, 3, 3)
    K[:, 0, 0] = K[:, 1, 1] = geom.focal
    K[:, :2, 2], K[:, 2, 2] = geom.img_center, 1
    assert torch.allclose(geom.pinhole(X), project_camera_points(X, K, torch.zeros(4, 5)), atol=1e-3)


def test_make_crops_puts_full_frame_pixels_where_to_crop_says():
    image = np.zeros((1080, 1920, 3), np.uint8)
    u, v = 1003, 611
    image[v - 1:v + 2, u - 1:u + 2] = 255
    # The detector's crop rounds the square's corners (810.5 -> 810): the geometry must follow the crop taken.
    center, scale = np.array([[980.5, 540.25], [np.nan, np.nan]]), np.array([1.7, 2.0])
    crops, taken_center, taken_scale = make_crops([image, image], center, scale)
    assert crops.shape == (2, 3, 256, 256) and not crops[1].any() and np.isnan(taken_scale[1])
    assert np.abs(taken_center[0] - center[0]).max() < 1 and abs(taken_scale[0] - scale[0]) < 0.01
    geom = CropGeometry(torch.tensor(taken_center[:1]), torch.tensor(taken_scale[:1]), torch.tensor([1000.0]),
                        torch.tensor([[960.0, 540]]))
    expected = geom.to_crop(torch.tensor([[[u, v]]], dtype=torch.float64))[0, 0].numpy()
    brightness = crops[0, 0] - crops[0, 0].min()
    yy, xx = np.mgrid[:256, :256]
    found = np.array([(xx * brightness).sum(), (yy * brightness).sum()]) / brightness.sum()
    assert np.allclose(found, expected, atol=0.1)


def test_lookup_window_samples_row_index_along_x():
    H = W = 64
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    corr = torch.stack([0.5 * xx - 0.25 * yy + 1.0, -0.1 * xx + 0.7 * yy])[None]  # (1, 2, H, W), linear
    coords = torch.tensor([[[20.3, 30.6], [62.5, 10.25]]])
    out = lookup_windows(corr, coords, 3).reshape(1, 2, 7, 7)
    for m, (a, b, c) in enumerate([(0.5, -0.25, 1.0), (-0.1, 0.7, 0.0)]):
        for i in range(7):
            for j in range(7):
                x, y = coords[0, m, 0] + i - 3, coords[0, m, 1] + j - 3
                if 0 <= x <= W - 1 and 0 <= y <= H - 1:  # bilinear sampling of a linear map is exact inside
                    assert abs(out[0, m, i, j] - (a * x + b * y + c)) < 1e-4
    # Beyond the border the map is zero: a window at the far corner reads zeros.
    far = lookup_windows(corr, torch.tensor([[[80.0, 80.0], [80.0, 80.0]]]), 3)
    assert torch.count_nonzero(far) == 0


def _consistent_views(body, smpl, rig, geom, B):
    """Per-view estimates of known world bodies, built with BodyModel (an independent code path)."""
    V = len(rig)
    g = torch.Generator().manual_seed(3)
    go = axis_angle_to_matrix(torch.randn(B, 3, generator=g))
    body_pose = axis_angle_to_matrix(0.3 * torch.randn(B, 23, 3, generator=g))
    betas = torch.randn(B, 10, generator=g)
    transl = 0.2 * torch.randn(B, 3, generator=g)
    root_world = body(go, body_pose, betas, transl).joints[:, 0]
    R, t = (torch.as_tensor(x, dtype=torch.float32) for x in (rig.R, rig.t))
    root_cam = (R @ root_world[:, None, :, None])[..., 0] + t  # (B, V, 3)
    trans = root_cam - body.rest_joints(betas)[:, None, 0]
    cam = geom.translation_to_cam(trans.reshape(-1, 3))
    rot = torch.cat([(R @ go[:, None])[:, :, None], body_pose[:, None].expand(B, V, 23, 3, 3)], 2)
    pose6d = matrix_to_rot6d(rot).reshape(-1, 144)
    return (pose6d, betas[:, None].expand(B, V, 10).reshape(-1, 10), cam), (go, body_pose, betas, transl)


def test_world_proposals_recover_the_world_body(body, smpl):
    rig, B = _rig(), 2
    geom = _geom(B, len(rig))
    R, t = (torch.as_tensor(x, dtype=torch.float32) for x in (rig.R, rig.t))
    views, (go, body_pose, betas, transl) = _consistent_views(body, smpl, rig, geom, B)
    p = world_proposals(*views, geom, smpl, R, t)
    assert torch.allclose(p.transl, transl[:, None].expand_as(p.transl), atol=1e-4)
    assert torch.allclose(R.transpose(-1, -2) @ p.global_orient, go[:, None].expand(B, len(rig), 3, 3), atol=1e-5)
    # Merging views that already agree changes nothing.
    merged = world_merge(smpl, geom, R, t)(*views)
    for a, b in zip(merged, views):
        assert torch.allclose(a, b, atol=2e-4)


def test_world_merge_gives_one_body_seen_by_every_camera(body, smpl):
    rig, B = _rig(), 2
    V = len(rig)
    geom = _geom(B, V)
    R, t = (torch.as_tensor(x, dtype=torch.float32) for x in (rig.R, rig.t))
    views, _ = _consistent_views(body, smpl, rig, geom, B)
    g = torch.Generator().manual_seed(4)
    noisy = (views[0] + 0.05 * torch.randn(views[0].shape, generator=g), views[1] + 0.1 * torch.randn(B * V, 10, generator=g),
             views[2] * (1 + 0.05 * torch.randn(B * V, 3, generator=g)))
    pose6d, betas, cam = world_merge(smpl, geom, R, t)(*noisy)
    go, bp, b, tr = average_proposals(world_proposals(*noisy, geom, smpl, R, t), R)
    world_verts = body(go, bp, b, tr).vertices  # (B, 6890, 3)
    rot = rot6d_to_matrix(pose6d.reshape(-1, 24, 6))
    verts_cam, _ = smpl(rot, betas)
    verts_cam = (verts_cam + geom.cam_to_translation(cam)[:, None]).reshape(B, V, -1, 3)
    expected = world_verts[:, None] @ R.transpose(-1, -2) + t[:, None]
    assert torch.allclose(verts_cam, expected, atol=2e-4)


def test_shape_refit_keeps_the_subject_betas(body, smpl):
    rig, B = _rig(), 2
    geom = _geom(B, len(rig))
    R, t = (torch.as_tensor(x, dtype=torch.float32) for x in (rig.R, rig.t))
    views, _ = _consistent_views(body, smpl, rig, geom, B)
    subject = torch.linspace(-1, 1, 10)
    for merge in (world_merge(smpl, geom, R, t, betas=subject), reference_merge(R, betas=subject)):
        _, betas, _ = merge(*views)
        assert torch.equal(betas, subject.expand(B * len(rig), 10))


@pytest.mark.parametrize("views", ["single", "world"])
def test_loop_is_differentiable_into_the_update_block(body, views):
    torch.manual_seed(0)
    model = Refit("w32").eval()
    model.set_body(body)
    rig = _rig()
    N = len(rig)
    feature, z = torch.randn(N, 480, 64, 64, requires_grad=True), torch.randn(N, 256)
    geom = _geom(1, N)
    merge = projector = None
    if views == "world":  # the multi-view loop: averaging in the world frame, real intrinsics and distortion
        R, t = (torch.as_tensor(x, dtype=torch.float32) for x in (rig.R, rig.t))
        K, dist = (torch.as_tensor(x, dtype=torch.float32) for x in (rig.K, rig.dist))
        merge, projector = world_merge(model.smpl, geom, R, t), lambda X: project_camera_points(X, K, dist)
    out = model.refine(feature, z, geom, iters=2, merge=merge, projector=projector)
    # A 2D reprojection loss on the final estimate, through two feedback steps.
    target = out.joints2d.detach() + 5.0
    loss = ((out.joints2d - target) ** 2).mean()
    loss.backward()
    for name in ("update_block.pose_gru.lq.weight", "update_block.shape_gru.lz.weight", "update_block.cam_gru.lr.weight",
                 "regressor.decpose.weight", "local_layer.weight", "flow_layer.weight", "corr_layer.6.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # ... and on into the backbone's outputs (the backbone is a plain differentiable module).
    assert torch.isfinite(feature.grad).all() and feature.grad.abs().sum() > 0


def _save_checkpoint(path, model: Refit, **extra):
    torch.save({"model": model.state_dict(), **extra}, path)


_calls: list = []


def _side_effect(*args):
    _calls.append(args)
    return args


class _Foreign:
    """An object whose unpickling would run code (``_side_effect``)."""

    def __reduce__(self):
        return _side_effect, ("ran",)


def test_load_refit_reads_weights_only_and_never_runs_foreign_code(tmp_path, body):
    torch.manual_seed(0)
    model = Refit("w32")
    path = tmp_path / "checkpoint_best.pth.tar"
    _save_checkpoint(path, model, cfg=_Foreign(), score=np.float64(51.2), epoch=3)
    _calls.clear()
    loaded = load_refit(path)
    assert _calls == []
    assert loaded.backbone_name == "w32" and not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(InputDataError, match="HRNet-W32"):
        load_refit(path, backbone="w48")
    replaced = load_refit(path, body=body)
    assert torch.equal(replaced.smpl.v_template, body.layer.v_template)
    assert torch.equal(replaced.regressor.deccam.weight, model.regressor.deccam.weight)
    # Without its SMPL buffers a checkpoint needs a body.
    bare = tmp_path / "bare.pth.tar"
    torch.save({"model": {k: v for k, v in model.state_dict().items() if not k.startswith("smpl")}}, bare)
    with pytest.raises(InputDataError, match="missing"):
        load_refit(bare)
    assert torch.equal(load_refit(bare, body=body).smpl.lbs_weights, body.layer.lbs_weights)


def test_load_refit_explains_missing_and_wrong_files(tmp_path):
    with pytest.raises(MissingDependencyError, match="checkpoint_best.pth.tar"):
        load_refit(tmp_path / "absent.pth.tar")
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputDataError, match="garbage.pth.tar"):
        load_refit(garbage)
    partial = tmp_path / "partial.pth.tar"
    torch.save({"model": {"init_layer.weight": torch.zeros(832, 384)}}, partial)
    with pytest.raises(InputDataError, match="missing"):
        load_refit(partial)
    other = tmp_path / "other.pth.tar"
    torch.save({"model": {"fc.weight": torch.zeros(3, 3)}}, other)
    with pytest.raises(InputDataError, match="not a ReFit checkpoint"):
        load_refit(other)


@pytest.fixture(scope="module")
def fast_model(body):
    """Random-weight ReFit whose backbone is replaced by random features (the loop is what is tested)."""
    torch.manual_seed(0)
    model = Refit("w32").eval()
    model.set_body(body)
    model.encode = lambda img: (torch.randn(len(img), 480, 64, 64) * 0.1, torch.randn(len(img), 256) * 0.1)
    return model


def test_fit_refit_multiview_world_mode(fast_model):
    rig = _rig()
    F, V = 3, len(rig)
    crops = np.zeros((F, V, 3, 256, 256), np.float32)
    center = np.tile(np.array([950.0, 540.0]), (F, V, 1))
    scale = np.full((F, V), 3.0)
    valid = np.ones((F, V), bool)
    valid[1, 0] = False
    valid[2] = False
    seen = []
    res = fit_refit_multiview(crops, center, scale, rig, fast_model, iters=2, valid=valid, frames_per_batch=2,
                              progress=lambda d, n: seen.append((d, n)))
    assert seen[-1] == (F, F)
    for x in (res.global_orient, res.body_pose, res.betas, res.transl):
        assert np.isfinite(x[:2]).all() and np.isnan(x[2]).all()
    Rw = res.global_orient[:2]
    assert np.allclose(Rw @ Rw.transpose(0, 2, 1), np.eye(3), atol=1e-5)
    subject = np.linspace(-1, 1, 10)
    shaped = fit_refit_multiview(crops[:1], center[:1], scale[:1], rig, fast_model, iters=1, betas=subject)
    assert np.allclose(shaped.betas[0], subject, atol=1e-6) and shaped.meta["shape_refit"]
    with pytest.raises(FittingError):
        fit_refit_multiview(crops, center, scale, rig, fast_model, iters=1, mode="reference", valid=valid)
