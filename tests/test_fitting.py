import numpy as np
import pytest
import torch

from tests.fitting_data import body_spec, joints_spec, keypoints, motion, ring_rig
from mocap.body.model import load_body
from mocap.fitting.config import FitConfig, SmoothingConfig, load_pipeline
from mocap.fitting.params import BodyParams
from mocap.fitting.gaps import interpolate, smooth
from mocap.fitting.sequence import FLAGS, fit_sequence
from mocap.fitting.solver import BodyPoints
from mocap.fitting.swaps import SWAPS, swap_orders
from mocap.fitting.triangulation import normalized_coordinates, triangulate, triangulate_normalized
from mocap.fitting.views import select_views
from mocap.errors import ConfigError
from mocap.rotations import axis_angle_to_matrix, geodesic_angle

F = 16


@pytest.fixture(scope="module")
def scene():
    body = load_body(body_spec())
    spec, rig = joints_spec(), ring_rig(4)
    truth = motion(F)
    return body, spec, rig, truth, keypoints(body, spec, truth, rig)


def mpjpe_mm(body, spec, fitted, truth):
    pts = BodyPoints(body, spec)
    return float((pts.of(fitted) - pts.of(truth)).norm(dim=-1).mean() * 1000)


NO_SMOOTHING = FitConfig(smoothing=SmoothingConfig(sigma_frames=0.0))


@pytest.mark.parametrize("combine", ["average", "joint"])
def test_noise_free_fit_recovers_truth(scene, combine):
    body, spec, rig, truth, kp = scene
    res = fit_sequence(kp, rig, body, spec, NO_SMOOTHING.replace(combine=combine))
    assert mpjpe_mm(body, spec, res.params, truth) < 5.0
    assert np.nanmean(res.error_px) < 1.0
    assert res.views_used.all() and (res.flags == 0).all()  # frame 0's cold start is no reinitialisation


def test_shape_refit_holds_betas_bit_exactly(scene):
    body, spec, rig, truth, kp = scene
    betas = truth.betas[0].clone() + 1e-3  # a shape the fit would not arrive at by itself
    res = fit_sequence(kp, rig, body, spec, NO_SMOOTHING.replace(iterations=3), betas=betas)
    assert torch.equal(res.betas, betas) and res.betas_held
    assert all(torch.equal(b, betas) for b in res.params.betas)


def test_camera_that_sees_nothing(scene):
    body, spec, rig, truth, _ = scene
    kp = keypoints(body, spec, truth, rig)
    kp.keypoints[:, 2] = np.nan
    kp.detected[:, 2] = False
    res = fit_sequence(kp, rig, body, spec, NO_SMOOTHING)
    assert not res.views_used[:, 2].any() and res.views_used[:, [0, 1, 3]].all()
    assert np.isnan(res.error_px[:, 2]).all()
    assert mpjpe_mm(body, spec, res.params, truth) < 8.0


@pytest.mark.parametrize("missing", ["interpolate", "empty"])
def test_frames_with_too_few_views_are_flagged(scene, missing):
    body, spec, rig, truth, _ = scene
    kp = keypoints(body, spec, truth, rig)
    kp.keypoints[5:8, 1:] = np.nan  # frames 5-7 seen by one view only
    res = fit_sequence(kp, rig, body, spec, NO_SMOOTHING.replace(missing=missing, iterations=3), betas=truth.betas[0])
    few = (res.flags & FLAGS["too_few_views"]) > 0
    assert few.tolist() == [5 <= f < 8 for f in range(F)]
    gap = torch.isnan(res.params.transl).any(-1).numpy()
    if missing == "empty":
        assert gap.tolist() == few.tolist()
    else:
        assert not gap.any() and ((res.flags & FLAGS["interpolated"]) > 0).tolist() == few.tolist()
        # the filled frames lie between their neighbours, close to the truth of a smooth motion
        assert (res.params.transl[5:8] - truth.transl[5:8]).norm(dim=-1).max() < 0.05


def test_triangulation_rejects_a_wrong_view(scene):
    body, spec, rig, truth, kp = scene
    uv = kp.keypoints[..., :2].astype(np.float64).copy()
    uv[:, 3, 7] += 150.0  # one view grossly wrong on one keypoint
    X, used = triangulate(rig, uv, np.ones(uv.shape[:-1]))
    Xt = BodyPoints(body, spec).of(truth).numpy()
    assert np.abs(X - Xt).max() < 1e-4
    assert not used[:, 3, 7].any() and used.sum() == used.size - F
    # A few frames at a time (a long take's memory): the same points and views, a frame's own rejections kept.
    uv[2, 1, 4] = np.nan
    whole = triangulate_normalized(rig, normalized_coordinates(rig, uv), np.ones(uv.shape[:-1]))
    parts = triangulate_normalized(rig, normalized_coordinates(rig, uv), np.ones(uv.shape[:-1]), chunk=3)
    np.testing.assert_array_equal(parts[0], whole[0])
    np.testing.assert_array_equal(parts[1], whole[1])
    assert not whole[1][2, 1, 4]


def test_triangulation_consensus_outvotes_the_outlier_that_drags_the_point(scene):
    """View 3 off by 40-100 px on every keypoint: dropping the worst view of a DLT over all four keeps some of
    those outliers and drops good views instead; starting from the best pair's consensus finds every one."""
    body, spec, rig, truth, kp = scene
    uv = kp.keypoints[..., :2].astype(np.float64).copy()
    w = np.ones(uv.shape[:-1])
    clean = triangulate(rig, uv, w)
    same = triangulate(rig, uv, w, consensus=True)  # where every view agrees: the same points, bit for bit
    np.testing.assert_array_equal(same[0], clean[0])
    np.testing.assert_array_equal(same[1], clean[1])
    rng = np.random.default_rng(0)
    angle, radius = rng.uniform(0, 2 * np.pi, (F, uv.shape[2])), rng.uniform(40, 100, (F, uv.shape[2]))
    uv[:, 3] += radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    Xt = BodyPoints(body, spec).of(truth).numpy()
    X, used = triangulate(rig, uv, w)
    assert used[:, 3].any() and not used[:, :3].all() and np.abs(X - Xt).max() > 0.1
    X, used = triangulate(rig, uv, w, consensus=True)
    assert not used[:, 3].any() and used[:, :3].all()
    assert np.abs(X - Xt).max() < 1e-4


def test_smoothing_keeps_constant_and_reduces_jitter():
    g = torch.Generator().manual_seed(1)
    base = BodyParams.from_poses(0.5 * torch.randn(1, 72, generator=g).expand(30, 72), torch.zeros(10), torch.ones(30, 3))
    torch.testing.assert_close(smooth(base, 1.5).rotations, base.rotations, atol=1e-5, rtol=0)
    jitter = axis_angle_to_matrix(0.05 * torch.randn(30, 24, 3, generator=g))
    noisy = BodyParams.from_rotations(base.rotations @ jitter, base.betas, base.transl)
    before = geodesic_angle(noisy.rotations, base.rotations).mean()
    after = geodesic_angle(smooth(noisy, 1.5).rotations, base.rotations).mean()
    assert after < 0.6 * before
    # In chunks (a long take's memory) the same numbers, across chunk edges and NaN frames.
    transl = noisy.transl.clone()
    transl[[0, 11, 12]] = torch.nan
    gappy = BodyParams.from_rotations(noisy.rotations, noisy.betas, transl)
    whole, parts = smooth(gappy, 1.5), smooth(gappy, 1.5, chunk=4)
    torch.testing.assert_close(parts.rotations, whole.rotations, atol=0, rtol=0, equal_nan=True)
    torch.testing.assert_close(parts.transl, whole.transl, atol=0, rtol=0, equal_nan=True)


def _slerp_every_frame(p, valid):
    """The interpolation computed for every frame at once (what `interpolate` did before it computed the
    invalid frames only): a second implementation to compare with."""
    from mocap.rotations import matrix_to_axis_angle

    good, t = np.flatnonzero(valid), np.arange(len(valid))
    right = np.clip(np.searchsorted(good, t), 0, len(good) - 1)
    left = np.where(good[right] <= t, right, np.clip(right - 1, 0, len(good) - 1))
    i0, i1 = torch.as_tensor(good[left]), torch.as_tensor(good[right])
    alpha = torch.as_tensor(np.clip((t - good[left]) / (good[right] - good[left]).clip(min=1), 0, 1), dtype=p.transl.dtype)
    rot = p.rotations
    rel = matrix_to_axis_angle(rot[i0].transpose(-1, -2) @ rot[i1])
    return (rot[i0] @ axis_angle_to_matrix(alpha[:, None, None] * rel),
            p.transl[i0] + alpha[:, None] * (p.transl[i1] - p.transl[i0]))


def test_interpolation_fills_only_the_gaps_with_the_same_numbers():
    g = torch.Generator().manual_seed(2)
    n = 40
    p = BodyParams.from_rotations(axis_angle_to_matrix(torch.cumsum(0.1 * torch.randn(n, 24, 3, generator=g), 0)),
                                  torch.zeros(10).expand(n, 10), torch.randn(n, 3, generator=g))
    valid = np.ones(n, bool)
    valid[[0, 1, 7, 8, 9, 20, 39]] = False  # before the first, inside, alone, after the last
    nan = torch.where(torch.as_tensor(valid)[:, None, None, None], p.rotations, torch.nan)
    gappy = BodyParams.from_rotations(nan, p.betas, torch.where(torch.as_tensor(valid)[:, None], p.transl, torch.nan))
    filled = interpolate(gappy, valid)
    rot, transl = _slerp_every_frame(gappy, valid)
    torch.testing.assert_close(filled.rotations, rot, atol=0, rtol=0)
    torch.testing.assert_close(filled.transl, transl, atol=0, rtol=0)
    assert torch.equal(filled.rotations[valid], p.rotations[valid]) and torch.equal(filled.transl[valid], p.transl[valid])
    assert torch.equal(interpolate(p, np.ones(n, bool)).rotations, p.rotations)  # nothing to fill


def test_observations_in_chunks_are_the_same(scene, monkeypatch):
    """A long take's confident detections are converted a chunk of frames (voting) or a window (pixels and
    confidences) at a time (memory): the same tensors as the whole take at once."""
    import mocap.fitting.sequence as sequence

    body, spec, rig, truth, kp = scene
    kp = type(kp)(**{**kp.__dict__, "keypoints": kp.keypoints.copy()})
    kp.keypoints[3, 1, 2] = np.nan
    kp.keypoints[4, 0, :, 2] = 0.1  # below the confidence threshold
    kp.keypoints[5, 2, :20, 2] = 0.1  # too few keypoints left: the view does not vote
    points, cfg = BodyPoints(body, spec), FitConfig()
    whole = sequence._observations(kp, rig, points, cfg)
    monkeypatch.setattr(sequence, "_CHUNK", 3)
    parts = sequence._observations(kp, rig, points, cfg)
    assert torch.equal(parts.voting, whole.voting) and not whole.voting[5, 2] and whole.voting.sum() == F * 4 - 2
    uv, conf = whole.at(slice(None))
    assert uv.dtype == conf.dtype == body.dtype and uv.shape == (F, 4, len(points), 2)
    assert conf[4, 0].eq(0).all() and conf[3, 1, 2] == 0 and uv[3, 1, 2].eq(0).all()
    frames = np.array([2, 3, 4, 9])
    assert torch.equal(whole.at(frames)[0], uv[frames]) and torch.equal(whole.at(frames)[1], conf[frames])


def test_select_views_prefers_detections_and_spread():
    rig = ring_rig(6)
    kp = keypoints(load_body(body_spec()), joints_spec(), motion(4), rig).keypoints
    kp[:, 4, :, 2] = 0.0  # camera 4 never detects
    chosen = select_views(rig, kp, 3)
    assert 4 not in chosen
    # The greedy spread takes an opposite pair (180 degrees) before any neighbour; the third view ties at 60
    # degrees from one of them, so which one wins depends on floating-point noise in the (zero) disagreements.
    assert any((a + 3) % 6 == b for a in chosen for b in chosen), chosen


def test_select_views_drops_a_miscalibrated_camera():
    """Keypoints projected with the true rig; camera 3's calibration then turned by 2 degrees."""
    from mocap.cameras import Camera, CameraRig

    body = load_body(body_spec())
    spec, rig = joints_spec(), ring_rig(6)
    kp = keypoints(body, spec, motion(4), rig)
    c = rig[3]
    turn = axis_angle_to_matrix(torch.tensor([0.0, np.radians(2.0), 0.0], dtype=torch.float64)).numpy()
    cams = list(rig)
    cams[3] = Camera(c.name, c.K, c.dist, turn @ c.R, turn @ c.t, c.image_size)
    assert 3 not in select_views(CameraRig(tuple(cams)), kp.keypoints, 5)


def test_pipeline_preset_and_overrides():
    cfg = load_pipeline("keypoints", {"fit": {"combine": "average", "priors": {"pose": 2.0}}})
    assert cfg.fit.combine == "average" and cfg.fit.priors.pose == 2.0 and cfg.fit.iterations == 6
    with pytest.raises(ConfigError, match="iteratons"):
        load_pipeline("keypoints", {"fit": {"iteratons": 3}})
    with pytest.raises(ConfigError, match="no such pipeline"):
        load_pipeline("nonexistent")


def _exact_jacobian(fn, p, with_betas):
    """Autograd Jacobian at ``delta = 0`` of ``fn`` applied to ``p`` retracted by the exact exponential map."""
    from mocap.fitting.params import step_size

    delta0 = torch.zeros(len(p), step_size(with_betas), dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda d: fn(p.retract(d, with_betas)), delta0, vectorize=True)  # (B, ..., B, P)
    return torch.stack([J[b, ..., b, :] for b in range(len(p))])


@pytest.mark.parametrize("with_betas", [False, True])
def test_jacobians_match_exact_exponential_map(with_betas):
    """The solver's cheap Jacobians (first-order retraction for keypoints, closed-form log-map Jacobian for
    the priors) equal autograd through the exact exponential map, at large angles too."""
    from mocap.fitting.priors import PriorConfig, prior_residuals
    from mocap.fitting.params import step_size
    from mocap.fitting.solver import keypoint_jacobian, prior_system

    body = load_body(body_spec(), dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    aa = torch.randn(3, 24, 3, generator=g, dtype=torch.float64)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(3, 24, 1, generator=g, dtype=torch.float64) * 2.8
    aa[0, 4] = torch.tensor([-0.4, 0.1, 0.05])  # a hyperextended left knee: its limit term is active
    p = BodyParams.from_poses(aa.reshape(3, 72), 0.5 * torch.randn(3, 10, generator=g, dtype=torch.float64),
                              torch.randn(3, 3, generator=g, dtype=torch.float64))
    from mocap.body.keypoints import keypoint_spec

    for spec in (joints_spec(), keypoint_spec(body, "blazepose33")):  # joints; surface vertices (skinning, blend shapes)
        pts = BodyPoints(body, spec)
        J, X = keypoint_jacobian(pts, p, with_betas)
        torch.testing.assert_close(X, pts.of(p))
        torch.testing.assert_close(J, _exact_jacobian(pts.of, p, with_betas), rtol=1e-7, atol=1e-9)
    cfg = PriorConfig(pose=2.0, limits=50.0, betas=3.0)
    rp, J = prior_residuals(p.body_pose, p.betas if with_betas else None, cfg)
    Jp = torch.zeros(3, J.shape[1], step_size(with_betas), dtype=J.dtype)  # the root and translation: no prior
    Jp[..., 3:72], Jp[..., 75:] = J[..., :69], J[..., 69:]
    residuals = lambda q: prior_residuals(q.body_pose, q.betas if with_betas else None, cfg)[0]
    assert rp[0, 69] > 0  # the left knee's limit residual
    torch.testing.assert_close(Jp, _exact_jacobian(residuals, p, with_betas), rtol=1e-6, atol=1e-8)
    # The solver's normal equations of the priors, assembled from per-joint blocks, are the dense J^T J, J^T r.
    H, g = prior_system(p, with_betas, cfg)
    torch.testing.assert_close(H, Jp.transpose(1, 2) @ Jp, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, (Jp.transpose(1, 2) @ rp[..., None])[..., 0], rtol=1e-12, atol=1e-12)


def test_jacobian_products_are_matmul_and_cross_to_the_bit():
    """The Jacobian's broadcast products round as the batched matmul and ``torch.linalg.cross`` they replace
    (float32: a fit's results stay the same floats)."""
    from mocap.fitting.kinematics import _axis_cross, _rotate_all

    g = torch.Generator().manual_seed(5)
    G = axis_angle_to_matrix(torch.randn(4, 24, 3, generator=g))
    u, c = torch.randn(4, 7, 3, generator=g), torch.randn(4, 7, 24, 3, generator=g)
    assert torch.equal(_rotate_all(G, u), (G[:, None] @ u[:, :, None, :, None])[..., 0])
    out = torch.empty(4, 7, 3, 24, 3)
    _axis_cross(G, c, out)
    cross = torch.linalg.cross(G.transpose(-1, -2)[:, None], c[..., None, :].expand(-1, -1, -1, 3, -1))  # (B,K,24,a,3)
    assert torch.equal(out, cross.permute(0, 1, 4, 2, 3))


def test_projection_jacobian_matches_autograd():
    from mocap.cameras import project
    from mocap.fitting.kinematics import project_jacobian
    from mocap.fitting.solver import Cameras

    cams = Cameras.from_rig(ring_rig(3), torch.float64)
    cams = Cameras(cams.K, cams.dist + torch.tensor([0.0, 0.05, 0.01, -0.02, 0.03], dtype=torch.float64), cams.R, cams.t)
    X = torch.randn(2, 5, 3, dtype=torch.float64) * 0.5 + torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    uv, J = project_jacobian(X, cams.K, cams.dist, cams.R, cams.t)
    torch.testing.assert_close(uv, cams.project(X))
    auto = torch.autograd.functional.jacobian(lambda x: project(x, cams.K, cams.dist, cams.R, cams.t), X[:, None])
    # auto: (B, V, N, 2, B, 1, N, 3) -> the diagonal blocks
    expect = torch.stack([torch.stack([auto[b, :, n, :, b, 0, n] for n in range(5)], 1) for b in range(2)])
    torch.testing.assert_close(J, expect)


def test_leave_one_view_out_measures_the_held_out_view(scene):
    """The held-out view takes no part in its own fit: shifting its detections by 10 px shows up as ~10 px."""
    from mocap.fitting.lovo import leave_one_view_out

    body, spec, rig, truth, _ = scene
    kp = keypoints(body, spec, truth.index(slice(0, 4)), rig)
    kp.keypoints[:, 2, :, 0] += 10.0
    res = leave_one_view_out(kp, rig, body, spec, NO_SMOOTHING.replace(iterations=4), betas=truth.betas[0])
    assert res.errors.shape == (4, 4, 24)
    assert abs(res.per_view()["cam2"] - 10.0) < 1.0
    np.testing.assert_allclose(res.offsets()["cam2"], [-10.0, 0.0], atol=1.0)  # projected minus detected
    assert res.per_view(centred=True)["cam2"] < 1.0
    assert set(res.per_keypoint()) == set(spec.names)


def test_leave_one_view_out_fits_as_mocap_run_does(scene):
    """A wrong keypoint in a fitting view (its knee 0.3 m off) is left out of the fit of the others, as
    `mocap run` leaves it out: the held-out views see the fit without it (bit for bit; fitted with it, the
    robust loss alone moved them by up to 0.6 px), while where its view is held out it counts in full."""
    from mocap.fitting.lovo import leave_one_view_out

    body, spec, rig, truth, _ = scene
    cfg = NO_SMOOTHING.replace(iterations=4)
    knee = spec.names.index("left_knee")
    without = keypoints(body, spec, truth.index(slice(0, 8)), rig)
    without.keypoints[:, 1, knee] = np.nan
    ref = leave_one_view_out(without, rig, body, spec, cfg, betas=truth.betas[0])
    kp = keypoints(body, spec, truth.index(slice(0, 8)), rig)
    kp.keypoints[:, 1, knee, 0] += 80.0  # px, about 0.3 m at the body
    res = leave_one_view_out(kp, rig, body, spec, cfg, betas=truth.betas[0])
    others = [0, 2, 3]
    np.testing.assert_array_equal(res.errors[others], ref.errors[others])
    assert np.nanmean(res.errors[1, :, knee]) > 70.0


def test_cli_shape_then_run(tmp_path, scene):
    """`mocap shape` then `mocap run --shape --debug` on a small session: files, held betas, quality, errors."""
    import h5py
    import yaml
    from typer.testing import CliRunner

    from mocap.cli import app
    from mocap.io.calibration_toml import save_rig
    from mocap.io.keypoints_h5 import write_keypoints
    from mocap.io.smpl_npz import load_sequence
    from mocap.io.subject import load_subject

    body, spec, rig, truth, _ = scene
    root = tmp_path / "session"
    (root / "output").mkdir(parents=True)
    save_rig(rig, root / "calibration.toml")
    kp = keypoints(body, spec, truth.index(slice(0, 6)), rig, noise=0.5)
    planted = np.zeros((6, 4), np.int8)
    planted[2:4, 2] = SWAPS.index("all")  # the detector swapped left and right in one view, two frames
    kp.keypoints[2:4, 2] = kp.keypoints[2:4, 2][:, swap_orders(kp.names)[SWAPS.index("all")]]
    write_keypoints(root / "output" / "keypoints2d.h5", kp)
    (root / "session.yaml").write_text(yaml.safe_dump({"body": body_spec(), "overrides": {"fit": {"iterations": 3}}}))
    runner = CliRunner()
    res = runner.invoke(app, ["shape", str(root), "--frames", "0:6", "-o", str(tmp_path / "subject.npz")])
    assert res.exit_code == 0, res.output
    subject = load_subject(tmp_path / "subject.npz")
    assert subject.surface_model == body.name and subject.betas.shape == (10,) and subject.error_px < 3.0
    res = runner.invoke(app, ["run", str(root), "--shape", str(tmp_path / "subject.npz"), "--debug"])
    assert res.exit_code == 0, res.output
    seq = load_sequence(root / "output" / "smpl.npz")
    assert seq.poses.shape == (6, 24, 3) and np.array_equal(np.broadcast_to(seq.betas, (6, 10)), np.broadcast_to(subject.betas, (6, 10)))
    assert seq.extra["reprojection_error_px"].shape == (6, 4) and seq.extra["views_used"].all()
    np.testing.assert_array_equal(seq.extra["left_right_swaps"], planted)
    assert f"{rig.names[2]}: left and right keypoints relabelled in 2 frames" in res.output
    assert seq.meta["left_right_swaps"] == {rig.names[2]: {"all": 2}}
    err = seq.extra["reprojection_error_px"]
    assert err[2:4].max() <= err[[0, 1, 4, 5]].max()  # the relabelled frames fit like the others (swapped: tens of px)
    with h5py.File(root / "output" / "fit.h5") as f:
        assert f["iterations/error_px"].shape == (3, 6, 4)
        err = f["iterations/error_px"][:]
        assert np.nanmean(err[-1]) < np.nanmean(err[0]) + 1e-3  # the loop does not make things worse
    (root / "calibration.toml").unlink()
    res = runner.invoke(app, ["run", str(root)])
    assert res.exit_code == 2 and "calibration.toml" in res.output


def test_steady_torso_replaces_flipped_and_missing_frames():
    from mocap.fitting.initialize import steady_torso

    t = torch.arange(20, dtype=torch.float64)
    G = axis_angle_to_matrix(torch.stack([0 * t, 0.05 * t, 0 * t], -1))  # turning slowly about y
    hips = torch.stack([0.01 * t, 0 * t + 0.9, 0 * t], -1)
    ok = torch.ones(20, dtype=torch.bool)
    bad_G, bad_hips = G.clone(), hips.clone()
    bad_G[7] = G[7] @ axis_angle_to_matrix(torch.tensor([0.0, np.pi, 0.0], dtype=torch.float64))  # left/right swap
    ok[12] = False
    bad_G[12], bad_hips[12] = torch.eye(3, dtype=torch.float64), torch.nan
    G2, hips2 = steady_torso(bad_G, bad_hips, ok)
    keep = torch.ones(20, dtype=torch.bool)
    keep[[7, 12]] = False
    assert torch.equal(G2[keep], G[keep]) and torch.equal(hips2[keep], hips[keep])
    assert (geodesic_angle(G2[[7, 12]], G[[7, 12]]) < 0.06).all()
    assert (hips2[12] - hips[12]).norm() < 0.02
