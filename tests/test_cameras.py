import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mocap import cameras as cam
from mocap.cameras import Camera, CameraRig
from mocap.errors import InputDataError


def random_camera(rng, name="c0") -> Camera:
    f = rng.uniform(900, 2000)
    K = np.array([[f, 0, rng.uniform(900, 1000)], [0, f * rng.uniform(0.98, 1.02), rng.uniform(500, 580)], [0, 0, 1]])
    dist = np.array([rng.uniform(-0.3, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(-1e-3, 1e-3), rng.uniform(-1e-3, 1e-3), rng.uniform(-0.02, 0.02)])
    R = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
    return Camera(name, K, dist, R, rng.normal(size=3), (1920, 1080))


def points_in_view(c: Camera, rng, n=200) -> np.ndarray:
    """World points in front of camera c, spread over its field of view."""
    uv = rng.uniform([0, 0], c.image_size, size=(n, 2))
    xy = (np.linalg.inv(c.K) @ np.c_[uv, np.ones(n)].T).T
    depth = rng.uniform(1, 6, size=(n, 1))
    return c.to_world(xy * depth)


def test_projection_matches_opencv():
    rng = np.random.default_rng(1)
    for i in range(10):
        c = random_camera(rng)
        X = points_in_view(c, rng)
        ref, _ = cv2.projectPoints(X, cv2.Rodrigues(c.R)[0], c.t, c.K, c.dist)
        np.testing.assert_allclose(c.project(X), ref.reshape(-1, 2), atol=1e-6)


def test_torch_projection_equals_numpy_and_is_differentiable():
    rng = np.random.default_rng(2)
    c = random_camera(rng)
    X = points_in_view(c, rng, 20)
    p = {k: torch.tensor(getattr(c, k)) for k in ("K", "dist", "R", "t")}
    Xt = torch.tensor(X, requires_grad=True)
    uv = cam.project(Xt, p["K"], p["dist"], p["R"], p["t"])
    np.testing.assert_allclose(uv.detach().numpy(), c.project(X), atol=1e-9)
    torch.autograd.gradcheck(lambda x: cam.project(x, p["K"], p["dist"], p["R"], p["t"]), (Xt[:3].detach().clone().requires_grad_(True),))


def test_rig_projection_broadcasts_over_frames_and_views():
    rng = np.random.default_rng(3)
    rig = CameraRig(tuple(random_camera(rng, f"cam{i}") for i in range(3)))
    X = rng.normal(size=(4, 3, 5, 3)) * 0.3 + 0  # (F, V, J, 3)
    uv = cam.project(torch.tensor(X), **rig.torch_params(torch.float64))
    for v, c in enumerate(rig):
        np.testing.assert_allclose(uv[:, v].numpy(), c.project(X[:, v]), atol=1e-9)
    np.testing.assert_allclose(rig.project(X[0, 0]), np.stack([c.project(X[0, 0]) for c in rig]), atol=1e-12)


def test_undistortion_inverts_distortion():
    rng = np.random.default_rng(4)
    for _ in range(5):
        c = random_camera(rng)
        X = points_in_view(c, rng)
        pinhole = Camera(c.name, c.K, np.zeros(5), c.R, c.t, c.image_size)
        np.testing.assert_allclose(c.undistort(c.project(X)), pinhole.project(X), atol=1e-6)


def test_rays_pass_through_points():
    rng = np.random.default_rng(5)
    c = random_camera(rng)
    X = points_in_view(c, rng, 50)
    origin, d = c.rays(c.project(X))
    np.testing.assert_allclose(origin, c.center)
    to_point = X - origin
    cross = np.linalg.norm(np.cross(d, to_point), axis=1) / np.linalg.norm(to_point, axis=1)
    assert cross.max() < 1e-8
    assert np.all((d * to_point).sum(1) > 0)


def test_world_camera_round_trip_and_centre():
    rng = np.random.default_rng(6)
    c = random_camera(rng)
    X = rng.normal(size=(10, 3))
    np.testing.assert_allclose(c.to_world(c.to_camera(X)), X, atol=1e-12)
    np.testing.assert_allclose(c.to_camera(c.center[None])[0], 0, atol=1e-12)


def test_rig_lookup_by_name_and_errors():
    rng = np.random.default_rng(7)
    rig = CameraRig((random_camera(rng, "a"), random_camera(rng, "b")))
    assert rig["b"] is rig[1]
    assert rig.subset(["b", "a"]).names == ["b", "a"]
    with pytest.raises(InputDataError, match="no camera named 'z'"):
        rig["z"]
    with pytest.raises(InputDataError, match="repeated: a"):
        CameraRig((rig["a"], rig["a"]))


def test_camera_validation():
    with pytest.raises(InputDataError, match="not a rotation"):
        Camera("x", np.eye(3), np.zeros(5), np.diag([1, 1, -1.0]), np.zeros(3), (10, 10))
    with pytest.raises(InputDataError, match="no skew"):
        Camera("x", [[1, 0.5, 0], [0, 1, 0], [0, 0, 1]], np.zeros(5), np.eye(3), np.zeros(3), (10, 10))
    with pytest.raises(InputDataError, match="K has shape"):
        Camera("x", np.eye(2), np.zeros(5), np.eye(3), np.zeros(3), (10, 10))
    short = Camera("x", np.eye(3), [0.1, 0.01], np.eye(3), np.zeros(3), (10, 10))
    np.testing.assert_array_equal(short.dist, [0.1, 0.01, 0, 0, 0])
