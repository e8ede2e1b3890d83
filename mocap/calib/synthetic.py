"""Synthetic ChArUco footage with known cameras: ground truth for tests and the calibration benchmark.

A board image drawn by OpenCV is placed at poses in a y-up world and rendered into pinhole cameras with
OpenCV distortion by inverse mapping (each output pixel is undistorted, its ray hits the board plane, the
board image is sampled there), supersampled, blurred and noised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from mocap.calib.board import Board
from mocap.cameras import Camera, CameraRig, look_at


class BoardRenderer:
    """Renders one board into one camera; the per-pixel undistortion is computed once."""

    def __init__(self, board: Board, camera: Camera, px_per_square: int = 80, supersample: int = 2):
        import cv2

        c = board.config
        self.board, self.camera, self.s = board, camera, supersample
        self.margin = px_per_square // 2
        size = (c.cols * px_per_square + 2 * self.margin, c.rows * px_per_square + 2 * self.margin)
        self.texture = board.cv_board.generateImage(size, marginSize=self.margin)
        self.px_per_metre = px_per_square / c.square
        w, h = camera.image_size
        s = supersample
        u, v = np.meshgrid((np.arange(w * s) + 0.5) / s - 0.5, (np.arange(h * s) + 0.5) / s - 0.5)
        uv = np.stack([u.ravel(), v.ravel()], 1).reshape(-1, 1, 2)
        # 30 iterations leave < 1e-6 px for the distortions used here (mocap.cameras.undistort_pixels runs 200)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-12)
        xy = cv2.undistortPointsIter(uv, camera.K, camera.dist, None, None, criteria).reshape(-1, 2)
        self.rays = np.concatenate([xy, np.ones((len(xy), 1))], 1).astype(np.float32)
        self._cv2 = cv2

    def render(self, R_board: np.ndarray, t_board: np.ndarray, rng: np.random.Generator, blur: float = 0.7,
               noise: float = 2.0, background: int = 110) -> np.ndarray:
        """Grey ``(H, W)`` uint8 image of the board at pose ``X_world = R_board @ X_board + t_board``."""
        cv2, cam = self._cv2, self.camera
        R_cb = cam.R @ R_board
        t_cb = cam.R @ t_board + cam.t
        H = np.stack([R_cb[:, 0], R_cb[:, 1], t_cb], 1)  # board plane (x, y, 1) -> normalised camera coordinates
        q = self.rays @ np.linalg.inv(H).T.astype(np.float32)
        behind = q[:, 2] * np.linalg.det(H) <= 1e-9
        q[behind, 2] = 1.0
        # our board origin is the first inner corner, one square in from the texture's board edge
        tex = (q[:, :2] / q[:, 2:3] + self.board.config.square) * self.px_per_metre + (self.margin - 0.5)
        tex[behind] = -1e4
        w, h = cam.image_size
        maps = tex.reshape(h * self.s, w * self.s, 2)
        img = cv2.remap(self.texture, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=background)
        if self.s > 1:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        img = img.astype(np.float32)
        if blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        img += rng.normal(0.0, noise, img.shape)
        return np.clip(np.round(img), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Scene:
    """Known cameras and board poses: ``R_boards`` (P, 3, 3), ``t_boards`` (P, 3) board to world."""

    rig: CameraRig
    R_boards: np.ndarray
    t_boards: np.ndarray


def make_scene(board: Board, num_cameras: int = 4, num_poses: int = 30, image_size=(640, 480), focal: float = 600.0,
               radius: float = 1.8, arc: float = 90.0, spread: float = 0.25, tilt: float = 35.0,
               seed: int = 0) -> Scene:
    """Cameras on an ``arc``-degree arc around a board waved about (0, 1, 0); different intrinsics per camera."""
    rng = np.random.default_rng(seed)
    w, h = image_size
    target = np.array([0.0, 1.0, 0.0])
    cameras = []
    for i, az in enumerate(np.linspace(-arc / 2, arc / 2, num_cameras)):
        a = np.radians(az)
        center = np.array([radius * np.sin(a), 1.0 + 0.5 * (i % 2) + 0.2, radius * np.cos(a)])
        R, t = look_at(center, target + rng.normal(0, 0.05, 3))
        f = focal * (1 + 0.05 * i)
        K = np.array([[f, 0, w / 2 + rng.uniform(-15, 15)], [0, f * 1.002, h / 2 + rng.uniform(-15, 15)], [0, 0, 1]])
        dist = np.array([-0.12 - 0.03 * i, 0.05, 0.0008, -0.0005, 0.0])
        cameras.append(Camera(f"cam{i + 1}", K, dist, R, t, image_size))
    c = board.config
    centre_offset = np.array([(c.cols - 2) * c.square / 2, (c.rows - 2) * c.square / 2, 0.0])
    R_boards, t_boards = [], []
    for _ in range(num_poses):
        jitter = Rotation.from_euler("yxz", [rng.uniform(-tilt, tilt), rng.uniform(-tilt, tilt), rng.uniform(-30, 30)], degrees=True)
        # facing the arc: board y down, -z (the printed face) towards +z world; then random yaw, pitch, roll
        R = jitter.as_matrix() @ np.diag([1.0, -1.0, -1.0])
        t = target + rng.uniform(-spread, spread, 3) * [1, 1, 0.5] - R @ centre_offset
        R_boards.append(R)
        t_boards.append(t)
    return Scene(CameraRig(tuple(cameras)), np.stack(R_boards), np.stack(t_boards))


def render_scene(board: Board, scene: Scene, seed: int = 0, supersample: int = 2, progress=None):
    """Yield ``(camera_index, pose_index, image)`` for every camera and pose."""
    rng = np.random.default_rng(seed)
    total = len(scene.rig) * len(scene.R_boards)
    for ci, cam in enumerate(scene.rig):
        renderer = BoardRenderer(board, cam, supersample=supersample)
        for pi, (R, t) in enumerate(zip(scene.R_boards, scene.t_boards)):
            yield ci, pi, renderer.render(R, t, rng)
            if progress is not None:
                progress(ci * len(scene.R_boards) + pi + 1, total)
