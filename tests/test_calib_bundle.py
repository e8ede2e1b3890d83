"""The joint bundle adjustment recovers exact cameras from exact corners, starting from a perturbed rig."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from mocap.calib.board import Board
from mocap.calib.bundle import refine
from mocap.calib.synthetic import make_scene
from mocap.config import BoardConfig


def test_refine_recovers_exact_parameters():
    board = Board(BoardConfig(type="charuco", rows=5, cols=7, square=0.08, marker=0.06))
    scene = make_scene(board, num_cameras=3, num_poses=15, radius=1.3, spread=0.4, tilt=40, arc=60, seed=3)
    rig = scene.rig
    C, M, N = len(rig), len(scene.R_boards), board.num_corners
    corners = np.full((C, M, N, 2), np.nan)
    for c, cam in enumerate(rig):
        for m in range(M):
            X = board.object_points @ scene.R_boards[m].T + scene.t_boards[m]
            if cam.in_front(X).all():
                corners[c, m] = cam.project(X)
    # camera 0 fixes the world: express everything relative to it, then perturb the rest
    rng = np.random.default_rng(0)
    K = rig.K * (1 + rng.normal(0, 0.01, (C, 1, 1))) * [[1, 0, 1], [0, 1, 1], [0, 0, 0]] + np.eye(3) * [0, 0, 1]
    dist = rig.dist + rng.normal(0, 0.01, (C, 5)) * [1, 1, 0.1, 0.1, 0]
    jitter = Rotation.from_rotvec(rng.normal(0, 0.01, (C, 3))).as_matrix()
    jitter[0] = np.eye(3)
    R = jitter @ rig.R
    t = rig.t + rng.normal(0, 0.01, (C, 3)) * [[0]] + rng.normal(0, 0.01, (C, 3)) * (np.arange(C) > 0)[:, None]
    Rb = Rotation.from_rotvec(rng.normal(0, 0.01, (M, 3))).as_matrix() @ scene.R_boards
    tb = scene.t_boards + rng.normal(0, 0.01, (M, 3))
    res = refine(K, dist, R, t, Rb, tb, board.object_points, corners)
    assert np.abs(res.residuals).max() < 1e-6
    assert np.allclose(res.K, rig.K, atol=1e-5)
    assert np.allclose(res.dist, rig.dist, atol=1e-7)
    assert np.allclose(res.R, rig.R, atol=1e-8) and np.allclose(res.t, rig.t, atol=1e-8)


def test_analytic_jacobian_matches_finite_differences():
    """The Jacobian chained from OpenCV's derivatives against central differences of the residuals."""
    from mocap.calib.bundle import problem

    board = Board(BoardConfig(type="charuco", rows=4, cols=5, square=0.1, marker=0.07))
    scene = make_scene(board, num_cameras=3, num_poses=4, radius=1.3, spread=0.3, tilt=30, arc=60, seed=5)
    rig = scene.rig
    corners = np.full((3, 4, board.num_corners, 2), np.nan)
    for c, cam in enumerate(rig):
        for m in range(4):
            corners[c, m] = cam.project(board.object_points @ scene.R_boards[m].T + scene.t_boards[m])
    corners[1, 2, ::3] = np.nan  # partly seen
    corners[2, 0] = np.nan  # not seen
    for fix_k3 in (True, False):
        x0, evaluate, _ = problem(rig.K, rig.dist + [0, 0, 0, 0, 0.01], rig.R, rig.t, scene.R_boards, scene.t_boards,
                                  board.object_points, corners, fix_k3=fix_k3)
        x = x0 + np.random.default_rng(0).normal(0, 1e-3, x0.shape) * np.maximum(np.abs(x0), 1e-2)
        f, J = evaluate(x)
        assert f.shape == (2 * int((~np.isnan(corners[..., 0])).sum()),) and J.shape == (len(f), len(x))
        h = 1e-6 * np.maximum(np.abs(x), 1.0)
        fd = np.stack([(evaluate(x + e)[0] - evaluate(x - e)[0]) / (2 * e[i]) for i, e in enumerate(np.diag(h))], 1)
        np.testing.assert_allclose(J.toarray(), fd, rtol=1e-5, atol=1e-4 * np.abs(fd).max())
