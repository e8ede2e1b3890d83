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
