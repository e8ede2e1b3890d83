"""`mocap synth`: rig, motion, detections, renderer and the written session, against truths known by construction."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mocap.cameras import Camera
from mocap.cli import app
from mocap.errors import ConfigError
from mocap.io.calibration_toml import load_rig
from mocap.io.keypoints_h5 import read_keypoints
from mocap.synth.board import SYNTH_BOARD, BoardTexture, board_path, charuco_board, draw_board
from mocap.synth.keypoints import Corruption, corrupt, mirror_index, project_visible
from mocap.synth.rig import look_at, ring_rig
from mocap.synth.render import pixel_rays, rasterize

runner = CliRunner()
BLAZE_NAMES = ("nose", "left_eye", "right_eye", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder")


@pytest.fixture(scope="module")
def body(any_body_spec):
    pytest.importorskip("mocap.body.keypoints")
    from mocap.body.model import load_body

    return load_body(any_body_spec)


# --- rig ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 4, 12])
def test_ring_rig_is_realistic_and_sees_the_volume(n):
    rig = ring_rig(n, np.random.default_rng(n))
    assert len(rig) == n
    C = rig.centers
    assert np.all((np.hypot(C[:, 0], C[:, 2]) >= 3) & (np.hypot(C[:, 0], C[:, 2]) <= 5))
    assert np.all((C[:, 1] >= 1) & (C[:, 1] <= 2.5))
    for cam in rig:
        assert cam.image_size in ((1920, 1080), (3840, 2160))
        assert 1000 * 0.99 <= cam.K[0, 0] <= 2000 * 1.01
        # Mild distortion: under 6 % displacement at the image corner.
        corner = np.array([[cam.image_size[0] - 1, cam.image_size[1] - 1]], float)
        ideal = cam.undistort(corner)
        assert np.linalg.norm(ideal - cam.K[:2, 2]) / np.linalg.norm(corner - cam.K[:2, 2]) == pytest.approx(1, abs=0.06)
        # A standing person at the centre is inside the image.
        uv = cam.project(np.array([[0, 0.0, 0], [0, 1.8, 0]]))
        assert np.all((uv >= 0) & (uv < cam.image_size)), cam.name


def test_look_at_puts_the_target_on_the_optical_axis_upright():
    R, t = look_at(np.array([3.0, 2.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    cam = Camera("c", np.diag([1000.0, 1000.0, 1.0]), np.zeros(5), R, t, (100, 100))
    np.testing.assert_allclose(cam.to_camera(np.array([[0.0, 1.0, 0.0]]))[0, :2], 0, atol=1e-12)
    # World up appears upwards in the image (smaller pixel y).
    assert cam.project(np.array([[0.0, 1.5, 0.0]]))[0, 1] < cam.project(np.array([[0.0, 1.0, 0.0]]))[0, 1]


def test_rig_camera_count_is_checked():
    with pytest.raises(ConfigError, match="2 to 12"):
        ring_rig(13, np.random.default_rng(0))


# --- detections -----------------------------------------------------------------------------------

def test_mirror_index_pairs_left_and_right():
    m = mirror_index(BLAZE_NAMES)
    assert [BLAZE_NAMES[i] for i in m] == ["nose", "right_eye", "left_eye", "mouth_right", "mouth_left",
                                           "right_shoulder", "left_shoulder"]


def test_points_outside_the_image_or_behind_are_missing():
    rig = ring_rig(3, np.random.default_rng(0))
    cam = rig[0]
    far_side = 2 * np.array([0.0, 1.0, 0.0]) - cam.center  # behind the volume: in front of the camera
    behind = cam.center + (cam.center - np.array([0, 1.0, 0]))  # behind the camera
    pts = np.array([[[0, 1.0, 0], behind, [0, 50.0, 0]]])  # centre, behind camera 0, high above everyone
    uv = project_visible(rig, pts)
    assert np.isfinite(uv[0, :, 0]).all() and np.isnan(uv[0, 0, 1]).all() and np.isnan(uv[0, :, 2]).all()
    assert np.isfinite(project_visible(rig, far_side[None, None]))[0, 0].all()


def test_corruption_shares_noise_and_swaps():
    rng = np.random.default_rng(0)
    rig = ring_rig(4, rng)
    pts = np.random.default_rng(1).normal([0, 1, 0], 0.3, (400, len(BLAZE_NAMES), 3))
    det = corrupt(rig, pts, BLAZE_NAMES, Corruption(noise=2.0, outliers=0.05, occlusion=0.1), rng)
    visible = np.isfinite(det.clean[..., 0])
    assert det.outlier[visible].mean() == pytest.approx(0.05, abs=0.01)
    assert det.occluded[visible].mean() == pytest.approx(0.1, abs=0.01)
    good = visible & ~det.outlier & ~det.occluded
    resid = det.keypoints[..., :2][good] - det.clean[good]
    assert resid.std() == pytest.approx(2.0, rel=0.05)
    assert np.all(det.keypoints[..., 2][good] >= 0.7)
    # Outliers are far and confident: either at the mirror partner's place or 60-300 px away.
    partner = det.clean[:, :, mirror_index(BLAZE_NAMES)]
    dist_true = np.linalg.norm(det.keypoints[..., :2] - det.clean, axis=-1)[det.outlier]
    dist_partner = np.linalg.norm(det.keypoints[..., :2] - partner, axis=-1)[det.outlier]
    assert np.all((dist_partner < 15) | (dist_true >= 60))
    assert (dist_partner < 15).mean() > 0.2
    assert np.all(det.keypoints[..., 2][det.outlier] >= 0.75)
    # Occluded: half dropped, the rest faint.
    occ = det.occluded
    assert np.isnan(det.keypoints[..., 0][occ]).mean() == pytest.approx(0.5, abs=0.1)
    assert np.nanmax(det.keypoints[..., 2][occ]) <= 0.3


def test_noise_free_detections_are_the_projections():
    rng = np.random.default_rng(0)
    rig = ring_rig(3, rng)
    pts = rng.normal([0, 1, 0], 0.3, (5, len(BLAZE_NAMES), 3))
    det = corrupt(rig, pts, BLAZE_NAMES, Corruption(0, 0, 0), rng)
    for v, cam in enumerate(rig):
        np.testing.assert_allclose(det.keypoints[:, v, :, :2], cam.project(pts), atol=1e-9)


@pytest.mark.parametrize("kw, message", [({"noise": -1}, "noise"), ({"outliers": 1.5}, "outliers"),
                                         ({"outliers": 0.6, "occlusion": 0.6}, "exceed")])
def test_corruption_is_checked(kw, message):
    with pytest.raises(ConfigError, match=message):
        Corruption(**kw)


# --- motion ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["walk", "squat", "jumping_jacks", "arm_raise", "turn", "mixed"])
def test_motions_are_smooth_grounded_and_anatomical(body, kind):
    from mocap.body.model import JOINT_NAMES
    from mocap.synth.motion import generate_motion

    m = generate_motion(kind, 180, 60.0, body, np.random.default_rng(0))
    with torch.no_grad():
        out = body(m.global_orient, m.body_pose, torch.as_tensor(m.betas[None], dtype=torch.float32), m.transl)
    j, v = out.joints.double().numpy(), out.vertices.double().numpy()
    assert np.isfinite(j).all()
    lowest = v[..., 1].min(1)
    assert -0.01 < lowest.min() < 0.01  # on the floor, never through it
    if kind not in ("jumping_jacks", "mixed"):  # the others never leave it
        assert lowest.max() < 0.03
    acc = np.linalg.norm(j[2:] - 2 * j[1:-1] + j[:-2], axis=-1) * 60**2
    assert acc.max() < 80, f"joint acceleration {acc.max():.0f} m/s^2"  # vigorous human limbs stay well below
    # Knees bend backwards only: in the thigh-shin plane, the shin turns towards the body's back.
    R_root = torch.as_tensor(m.global_orient)
    from mocap.rotations import axis_angle_to_matrix

    back = -(axis_angle_to_matrix(R_root).numpy()[..., :, 2])  # the body's -z axis in the world
    for side in ("left", "right"):
        hip, knee, ankle = (j[:, JOINT_NAMES.index(f"{side}_{n}")] for n in ("hip", "knee", "ankle"))
        thigh, shin = knee - hip, ankle - knee
        bend = np.degrees(np.arccos(np.clip((thigh * shin).sum(1) / np.linalg.norm(thigh, axis=1)
                                            / np.linalg.norm(shin, axis=1), -1, 1)))
        assert bend.max() < 145
        flexed = bend > 20
        if flexed.any():  # the ankle lies behind the thigh's line
            off_line = shin - thigh / np.linalg.norm(thigh, axis=1, keepdims=True) * \
                (shin * thigh).sum(1, keepdims=True) / np.linalg.norm(thigh, axis=1, keepdims=True)
            assert np.all((off_line * back).sum(1)[flexed] > 0)


def test_walk_translates_and_turns_mixed_stays_in_the_volume(body):
    from mocap.synth.motion import generate_motion

    m = generate_motion("walk", 240, 60.0, body, np.random.default_rng(1))
    path = m.transl[:, [0, 2]]
    assert np.linalg.norm(np.diff(path, axis=0), axis=1).sum() > 3.0  # ~1 m/s for 4 s
    heading = np.unwrap(np.arctan2(*np.diff(path, axis=0).T))
    assert abs(heading[-1] - heading[0]) > np.radians(90)
    mixed = generate_motion("mixed", 1500, 60.0, body, np.random.default_rng(2))
    assert np.hypot(mixed.transl[:, 0], mixed.transl[:, 2]).max() < 2.0


def test_unknown_motion(body):
    from mocap.synth.motion import generate_motion

    with pytest.raises(ConfigError, match="unknown motion"):
        generate_motion("dance", 10, 60.0, body, np.random.default_rng(0))


# --- renderer -------------------------------------------------------------------------------------

def _sphere(center, radius, n=48):
    th, ph = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n, endpoint=False), indexing="ij")
    verts = center + radius * np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1).reshape(-1, 3)
    faces = []
    for i in range(n - 1):
        for k in range(2 * n):
            a, b, c, d = i * 2 * n + k, i * 2 * n + (k + 1) % (2 * n), (i + 1) * 2 * n + k, (i + 1) * 2 * n + (k + 1) % (2 * n)
            faces += [(a, b, c), (b, d, c)]
    return verts, np.array(faces)


def _small_camera() -> Camera:
    R, t = look_at(np.array([2.0, 1.5, 2.5]), np.array([0.0, 1.0, 0.0]))
    K = np.array([[300.0, 0, 159.5], [0, 300, 119.5], [0, 0, 1]])
    return Camera("small", K, [-0.08, 0.01, 0.001, -0.001, 0], R, t, (320, 240))


def test_rasterised_sphere_matches_ray_casting():
    cam = _small_camera()
    center, radius = np.array([0.1, 1.0, -0.1]), 0.4
    verts, faces = _sphere(center, radius)
    r = rasterize(cam, verts, faces)
    mask = r.full_mask(cam.image_size)
    # Independent truth: intersect each pixel's ray with the exact sphere.
    d = pixel_rays(cam)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    oc = cam.center - center
    b = d @ oc
    disc = b**2 - (oc @ oc - radius**2)
    hit = disc > 0
    # The faceted sphere is inscribed: compare away from the outline (3 px).
    inner = cv2.erode(hit.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    outer = cv2.dilate(hit.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert mask[inner].all() and not mask[~outer].any()
    # Depth along the optical axis at the sphere's nearest pixels: within the tessellation's sag (~1 mm).
    h, w = r.face.shape
    z_true = ((-b - np.sqrt(np.where(hit, disc, 0)))[..., None] * d @ cam.R.T)[..., 2]
    sub = (slice(r.y0, r.y0 + h), slice(r.x0, r.x0 + w))
    both = inner[sub] & r.mask
    assert np.abs(r.depth[both] - z_true[sub][both]).max() < 0.005


def test_rendered_silhouette_covers_the_projected_body(body):
    from mocap.synth.motion import generate_motion
    from mocap.synth.render import backdrop, part_colours, shade_body

    m = generate_motion("arm_raise", 40, 60.0, body, np.random.default_rng(0))
    cam = _small_camera()
    with torch.no_grad():
        v = body(m.global_orient[-1:], m.body_pose[-1:], torch.as_tensor(m.betas[None], dtype=torch.float32),
                 m.transl[-1:] - [*m.transl[-1, [0]], 0, *m.transl[-1, [2]]]).vertices[0].double().numpy()
    img, mask = shade_body(cam, v, body.faces, part_colours(body.layer.lbs_weights.numpy()), backdrop(cam))
    uv = np.rint(cam.project(v)).astype(int)
    inside = np.all((uv >= 0) & (uv < cam.image_size), 1)
    assert inside.mean() > 0.95
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert grown[uv[inside, 1], uv[inside, 0]].all()
    # Only the silhouette differs from the empty scene.
    assert np.array_equal(img[~mask], backdrop(cam)[~mask])


def test_board_footage_corners_where_the_camera_model_puts_them():
    cam = _small_camera()
    cam = Camera("board", cam.K * [[3], [3], [1]], cam.dist, cam.R, cam.t, (960, 720))
    board = charuco_board(SYNTH_BOARD)
    # The board 2 m in front of the camera, facing it.
    R_b = cam.R.T
    t_b = cam.center + 2.0 * cam.R[2] - R_b @ [0.42, 0.3, 0.0]
    img = draw_board(np.full((720, 960, 3), 128, np.uint8), cam, pixel_rays(cam), BoardTexture.from_config(SYNTH_BOARD),
                     R_b, t_b)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    truth = cam.project(board.getChessboardCorners() @ R_b.T + t_b).astype(np.float32)
    start = truth + np.float32([1.5, -1.0])
    # A window small enough to hold no marker edge: the X-junction alone.
    refined = cv2.cornerSubPix(grey, start.reshape(-1, 1, 2).copy(), (4, 4), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 100, 1e-4)).reshape(-1, 2)
    # Measured: max 0.09 px, mean |0.007| px (3x3 supersampling quantises edge coverage to ninths).
    assert np.abs(refined - truth).max() < 0.15 and np.abs((refined - truth).mean(0)).max() < 0.03
    corners, ids, _, _ = cv2.aruco.CharucoDetector(board).detectBoard(grey)
    assert ids is not None and len(ids) == len(truth)
    # From behind, no pattern.
    back = draw_board(np.full((720, 960, 3), 128, np.uint8), cam, pixel_rays(cam), BoardTexture.from_config(SYNTH_BOARD),
                      R_b @ np.diag([-1.0, 1, -1]), t_b + R_b @ [0.84, 0, 0])
    assert cv2.aruco.CharucoDetector(board).detectBoard(cv2.cvtColor(back, cv2.COLOR_RGB2GRAY))[1] is None


def test_board_path_turns_and_stays_in_the_volume():
    R_b, t_b = board_path(60, np.random.default_rng(0))
    np.testing.assert_allclose(R_b @ np.swapaxes(R_b, 1, 2), np.broadcast_to(np.eye(3), R_b.shape), atol=1e-12)
    normals = R_b[:, :, 2]
    yaw = np.unwrap(np.arctan2(normals[:, 0], normals[:, 2]))
    assert np.ptp(yaw) > np.radians(300)
    assert np.all((t_b[:, 1] > 0.3) & (t_b[:, 1] < 2.5))


# --- the session ----------------------------------------------------------------------------------

def _synth(tmp_path: Path, spec: str, name: str, *args: str) -> Path:
    out = tmp_path / name
    res = runner.invoke(app, ["synth", str(out), "--body", spec, "--frames", "30", *args])
    assert res.exit_code == 0, res.output
    return out


def test_synth_session_keypoints_reproject_onto_the_truth(tmp_path, body, any_body_spec):
    from mocap.body.keypoints import body_keypoints, keypoint_spec

    out = _synth(tmp_path, any_body_spec, "s", "--cameras", "5", "--noise", "2")
    rig = load_rig(out / "calibration.toml")
    kp = read_keypoints(out / "output" / "keypoints2d.h5")
    gt = np.load(out / "ground_truth.npz")
    assert kp.cameras == tuple(rig.names) and kp.format == "blazepose33" and kp.fps == 60
    assert gt["poses"].shape == (30, 72) and gt["trans"].shape == (30, 3) and gt["betas"].shape == (10,)
    assert str(gt["surface_model"]) == body.name and float(gt["mocap_framerate"]) == 60
    # Recompute the keypoints from the AMASS-style truth alone, independently of the generator.
    spec = keypoint_spec(body, "blazepose33")
    poses = torch.as_tensor(gt["poses"], dtype=torch.float32)
    with torch.no_grad():
        X = body_keypoints(body, spec, poses[:, :3], poses[:, 3:].reshape(-1, 23, 3),
                           torch.as_tensor(gt["betas"][None], dtype=torch.float32),
                           torch.as_tensor(gt["trans"], dtype=torch.float32)).double().numpy()
    uv = rig.project(X[:, None])  # (F, V, K, 2)
    good = ~gt["keypoint_outlier"] & ~gt["keypoint_occluded"] & np.isfinite(kp.keypoints[..., 0])
    resid = kp.keypoints[..., :2][good] - uv[good]
    assert good.sum() > 1000
    assert resid.std() == pytest.approx(2.0, rel=0.1) and np.abs(resid.mean(0)).max() < 0.2
    assert np.abs(resid).max() < 2.0 * 6
    # The evaluation of the truth against itself is exact.
    res = runner.invoke(app, ["eval", str(out / "ground_truth.npz"), "--gt", str(out / "ground_truth.npz"),
                              "--body", any_body_spec])
    assert res.exit_code == 0, res.output


def test_synth_is_deterministic_for_a_seed(tmp_path, body, any_body_spec):
    a = _synth(tmp_path, any_body_spec, "a", "--seed", "7", "--motion", "mixed")
    b = _synth(tmp_path, any_body_spec, "b", "--seed", "7", "--motion", "mixed")
    c = _synth(tmp_path, any_body_spec, "c", "--seed", "8", "--motion", "mixed")
    ka, kb, kc = (read_keypoints(p / "output" / "keypoints2d.h5").keypoints for p in (a, b, c))
    np.testing.assert_array_equal(ka, kb)
    assert (a / "calibration.toml").read_text() == (b / "calibration.toml").read_text()
    ga, gb = np.load(a / "ground_truth.npz"), np.load(b / "ground_truth.npz")
    for k in ga.files:
        np.testing.assert_array_equal(ga[k], gb[k])
    assert not np.array_equal(np.nan_to_num(ka), np.nan_to_num(kc))


def test_noise_level_leaves_rig_and_motion_unchanged(tmp_path, body, any_body_spec):
    a = _synth(tmp_path, any_body_spec, "a", "--noise", "1")
    b = _synth(tmp_path, any_body_spec, "b", "--noise", "5")
    assert (a / "calibration.toml").read_text() == (b / "calibration.toml").read_text()
    np.testing.assert_array_equal(np.load(a / "ground_truth.npz")["poses"], np.load(b / "ground_truth.npz")["poses"])


def test_synth_render_writes_readable_videos(tmp_path, body, any_body_spec):
    from mocap.io.video import probe

    out = _synth(tmp_path, any_body_spec, "r", "--cameras", "2", "--frames", "3", "--render", "--board-frames", "2")
    rig = load_rig(out / "calibration.toml")
    for cam in rig:
        for folder, frames in (("videos", 3), ("calibration", 2)):
            info = probe(out / folder / f"{cam.name}.mp4")
            assert (info.frames, info.width, info.height) == (frames, *cam.image_size)
    assert np.load(out / "calibration" / "board_poses.npz")["R"].shape == (2, 3, 3)
    assert "board" in (out / "session.yaml").read_text()


@pytest.mark.parametrize("args, message", [
    (["--cameras", "13"], "2 to 12"), (["--motion", "dance"], "unknown motion"), (["--outliers", "2"], "outliers"),
])
def test_synth_bad_options_exit_2(tmp_path, any_body_spec, args, message):
    pytest.importorskip("mocap.body.keypoints")
    res = runner.invoke(app, ["synth", str(tmp_path / "x"), "--body", any_body_spec, *args])
    assert res.exit_code == 2 and message in res.output


def test_synth_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    res = runner.invoke(app, ["synth", str(tmp_path)])
    assert res.exit_code == 2 and "not an empty folder" in res.output


def test_scaled_ring_rig_sees_the_same_picture_smaller():
    full = ring_rig(3, np.random.default_rng(5))
    half = ring_rig(3, np.random.default_rng(5), scale=0.5)
    X = np.random.default_rng(1).uniform([-0.5, 0.0, -0.5], [0.5, 1.8, 0.5], (50, 3))
    for a, b in zip(full, half):
        assert b.image_size == (round(a.image_size[0] / 2), round(a.image_size[1] / 2))
        np.testing.assert_allclose(a.R, b.R)
        np.testing.assert_allclose(a.dist, b.dist)
        # A pixel's area scales about its top-left corner (-0.5, -0.5): centre u maps to (u + 0.5) / 2 - 0.5.
        np.testing.assert_allclose(b.project(X), (a.project(X) + 0.5) / 2 - 0.5, atol=1e-9)
    with pytest.raises(ConfigError, match="image scale"):
        ring_rig(3, np.random.default_rng(5), scale=2.0)


def test_calibrate_refuses_to_overwrite_the_synthetic_truth(tmp_path, any_body_spec):
    out = _synth(tmp_path, any_body_spec, "s", "--cameras", "2", "--frames", "3")
    truth = (out / "calibration.toml").read_text()
    res = runner.invoke(app, ["calibrate", str(out)])
    assert res.exit_code == 2 and "true rig of a synthetic session; pass -o" in res.output
    assert (out / "calibration.toml").read_text() == truth
