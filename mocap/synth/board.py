"""ChArUco board footage seen through our camera model, for calibrating synthetic rigs.

Board frame (OpenCV's ChArUco object points): x along the board's width (columns), y along its height
(rows), z = 0 on the printed face and +z pointing away from a viewer who sees the front. Board poses
``R_b`` (3, 3), ``t_b`` (3,) map board to world: ``X = R_b @ [bx, by, 0] + t_b``. The printed sheet
extends half a square beyond the pattern on every side (a white margin, as on real boards).

The image of the board is drawn by casting every pixel's (undistorted) ray onto the board plane and
sampling OpenCV's own board image (`CharucoBoard.generateImage`) there with `cv2.remap`: exact under
lens distortion, where a single `cv2.warpPerspective` homography would not be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap.cameras import Camera
from mocap.config import BoardConfig
from mocap.errors import ConfigError

#: The board of synthetic sessions: big enough to be found by cameras 3-5 m away.
SYNTH_BOARD = BoardConfig(type="charuco", rows=5, cols=7, square=0.12, marker=0.09, dict="4x4_50")


def charuco_board(config: BoardConfig):
    """The OpenCV ``CharucoBoard`` of a board config (``cols`` squares wide, ``rows`` high), as calibration builds it."""
    from mocap.calib.board import Board

    if config.type != "charuco":
        raise ConfigError(f"board type {config.type!r}: only charuco boards can be rendered")
    return Board(config).cv_board


@dataclass(frozen=True)
class BoardTexture:
    image: np.ndarray  # (h, w) uint8, the printed sheet including its margin
    px_per_m: float
    margin: float  # metres of white around the pattern
    size: tuple[float, float]  # pattern width, height in metres

    @classmethod
    def from_config(cls, config: BoardConfig, px_per_square: int = 64) -> "BoardTexture":
        board = charuco_board(config)
        margin_px = px_per_square // 2
        w, h = config.cols * px_per_square + 2 * margin_px, config.rows * px_per_square + 2 * margin_px
        img = board.generateImage((w, h), marginSize=margin_px, borderBits=1)
        return cls(img, px_per_square / config.square, config.square / 2,
                   (config.cols * config.square, config.rows * config.square))

    def corners(self) -> np.ndarray:
        """(4, 3) corners of the printed sheet in the board frame."""
        m, (w, h) = self.margin, self.size
        return np.array([[-m, -m, 0], [w + m, -m, 0], [w + m, h + m, 0], [-m, h + m, 0]])


def draw_board(image: np.ndarray, camera: Camera, rays: np.ndarray, texture: BoardTexture,
               R_b: np.ndarray, t_b: np.ndarray, back_grey: int = 200, samples: int = 3) -> np.ndarray:
    """Draw the board at pose ``R_b, t_b`` into ``image`` (H, W, 3) uint8, in place; return it.

    ``rays`` (H, W, 3) are the camera's world pixel directions (:func:`mocap.synth.render.pixel_rays`). Each
    pixel averages ``samples`` x ``samples`` rays spread over its area: sampling the binary pattern only at
    pixel centres leaves staircase edges that move detected corners by up to ~0.4 px. The back of the board
    is drawn plain grey, so cameras behind it see no pattern.
    """
    import cv2

    W, H = camera.image_size
    corners = texture.corners() @ R_b.T + t_b
    if not np.all(camera.in_front(corners)):
        return image
    uv = camera.project(corners)
    x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(uv.max(0)).astype(int) + 2, [W - 1, H - 1])
    if x1 < x0 or y1 < y0:
        return image
    n, C, m = R_b[:, 2], camera.center, texture.margin
    gx, gy = np.meshgrid(np.arange(x0, x1 + 1, dtype=np.float32), np.arange(y0, y1 + 1, dtype=np.float32))
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    grey_sum = np.zeros(gx.shape)
    hits = np.zeros(gx.shape)
    for dy in offsets:
        for dx in offsets:
            # Rays vary smoothly across the image: interpolate them at the sub-pixel position.
            d = np.stack([cv2.remap(rays[..., c].astype(np.float32), gx + dx, gy + dy, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for c in range(3)], -1).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (n @ (t_b - C)) / (d @ n)
            b = (C + s[..., None] * d - t_b) @ R_b  # board coordinates, z ~ 0
            on = (s > 0) & (b[..., 0] >= -m) & (b[..., 0] <= texture.size[0] + m) & \
                 (b[..., 1] >= -m) & (b[..., 1] <= texture.size[1] + m)
            # Texture pixel i covers board [i, i+1)/px_per_m - margin: its centre is at i + 0.5.
            map_x = ((b[..., 0] + m) * texture.px_per_m - 0.5).astype(np.float32)
            map_y = ((b[..., 1] + m) * texture.px_per_m - 0.5).astype(np.float32)
            grey = cv2.remap(texture.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            grey = np.where((d @ n) > 0, grey, back_grey)
            grey_sum += np.where(on, grey, 0)
            hits += on
    region = image[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
    cover = (hits / samples**2)[..., None]
    board = (grey_sum / np.maximum(hits, 1))[..., None]
    image[y0:y1 + 1, x0:x1 + 1] = np.rint(cover * board + (1 - cover) * region).astype(np.uint8)
    return image


def board_path(frames: int, rng: np.random.Generator, config: BoardConfig = SYNTH_BOARD) -> tuple[np.ndarray, np.ndarray]:
    """Board poses ``R_b`` (F, 3, 3), ``t_b`` (F, 3) waved through the capture volume: one full turn about
    the vertical so every camera of a ring sees the front, tilting and rolling for the intrinsics."""
    from scipy.spatial.transform import Rotation

    tau = np.linspace(0.0, 1.0, frames, endpoint=False)
    ph = rng.uniform(0, 2 * np.pi, 6)
    centre = np.stack([0.7 * np.sin(2 * np.pi * 1.3 * tau + ph[0]),
                       1.2 + 0.4 * np.sin(2 * np.pi * 2.1 * tau + ph[1]),
                       0.7 * np.sin(2 * np.pi * 0.9 * tau + ph[2])], 1)
    yaw = 2 * np.pi * tau + ph[3]
    tilt = np.radians(35) * np.sin(2 * np.pi * 3 * tau + ph[4])
    roll = np.radians(20) * np.sin(2 * np.pi * 2 * tau + ph[5])
    # Facing a viewer in direction (sin yaw, 0, cos yaw): z away from it, y down, x = y cross z.
    z = -np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], 1)
    y = np.broadcast_to([0.0, -1.0, 0.0], z.shape)
    x = np.cross(y, z)
    R_base = np.stack([x, y, z], -1)
    R_b = R_base @ Rotation.from_euler("xz", np.stack([tilt, roll], 1)).as_matrix()
    half = np.array([config.cols * config.square / 2, config.rows * config.square / 2, 0.0])
    t_b = centre - R_b @ half
    return R_b, t_b
