"""Calibration boards (ChArUco, checkerboard) and their detection in footage.

Conventions:
- Board frame as OpenCV's: origin at the first inner corner, x along the board's columns, y along its rows,
  z = x cross y, pointing into the board (cameras that see the printed face are on the -z side). Metres.
- Corner ``i`` of a detection is board point ``object_points[i]``; a corner not seen in a frame is NaN.
- ChArUco boards use OpenCV >= 4.6's layout (``legacy=False``); boards printed by older OpenCV with an even
  number of rows differ, and are detected with ``legacy=True``.

ChArUco detection calls OpenCV's ``CharucoDetector`` with its default detector parameters rather than
aniposelib's ``CharucoBoard.detect_image`` (which works with OpenCV 4.11), because aniposelib's 14-pass
adaptive threshold makes 1080p detection ~6x slower (73 ms against 13 ms a frame here).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mocap.config import BoardConfig
from mocap.errors import ConfigError, InputDataError

Progress = Callable[[int, int], None]

_DICT_SIZES = (50, 100, 250, 1000)


@dataclass(frozen=True)
class BoardDetections:
    """Board corners found in one camera's footage.

    ``frames`` (M,) frame indices with a usable detection; ``corners`` (M, N, 2) pixels, NaN where a corner
    was not seen; ``image_size`` (width, height).
    """

    camera: str
    source: Path
    image_size: tuple[int, int]
    frames: np.ndarray
    corners: np.ndarray
    frames_read: int

    def __len__(self) -> int:
        return len(self.frames)


class Board:
    """A calibration board built from a :class:`BoardConfig`; detects itself in images."""

    def __init__(self, config: BoardConfig, legacy: bool = False):
        self.config = config
        if config.square <= 0:
            raise ConfigError(f"board: square size must be positive (metres), got {config.square}")
        if config.type == "charuco":
            self._init_charuco(config, legacy)
        else:
            self._init_checkerboard(config)

    def _init_charuco(self, c: BoardConfig, legacy: bool) -> None:
        import cv2

        if c.rows < 3 or c.cols < 3:
            raise ConfigError(f"board: a ChArUco board needs at least 3x3 squares, got {c.rows}x{c.cols}")
        if not 0 < c.marker < c.square:
            raise ConfigError(f"board: marker side {c.marker} m must be positive and smaller than the square {c.square} m")
        m = re.fullmatch(r"([4-7])x\1_(\d+)", c.dict.lower())
        if m is None or int(m.group(2)) not in _DICT_SIZES:
            raise ConfigError(f"board: unknown ArUco dictionary {c.dict!r}; use e.g. 4x4_50, 5x5_100, 6x6_250")
        bits, size = int(m.group(1)), int(m.group(2))
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, f"DICT_{bits}X{bits}_{size}"))
        if c.rows * c.cols // 2 > size:
            raise ConfigError(f"board: a {c.rows}x{c.cols} ChArUco board has {c.rows * c.cols // 2} markers, "
                              f"more than dictionary {c.dict} holds; use a larger dictionary")
        self.cv_board = cv2.aruco.CharucoBoard((c.cols, c.rows), c.square, c.marker, dictionary)
        self.cv_board.setLegacyPattern(legacy)
        self._detector = cv2.aruco.CharucoDetector(self.cv_board)
        # OpenCV puts the origin at the board's outer corner; ours is the first inner corner (a visible point).
        self.object_points = np.asarray(self.cv_board.getChessboardCorners(), dtype=np.float64) - [c.square, c.square, 0]
        self.min_corners = 6
        self._gap = (c.square - c.marker) / 2 / c.square  # white gap between a corner and a marker, in squares

    def _init_checkerboard(self, c: BoardConfig) -> None:
        try:
            rows, cols = (int(v) for v in c.corners.lower().split("x"))
        except ValueError:
            raise ConfigError(f"board: corners must be ROWSxCOLS inner corners, e.g. 4x7; got {c.corners!r}") from None
        if rows < 2 or cols < 2:
            raise ConfigError(f"board: a checkerboard needs at least 2x2 inner corners, got {c.corners}")
        self.pattern = (cols, rows)  # OpenCV's patternSize: corners per row, per column
        grid = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2)
        self.object_points = np.concatenate([grid * c.square, np.zeros((len(grid), 1))], 1)
        self.min_corners = len(grid)

    @property
    def num_corners(self) -> int:
        return len(self.object_points)

    def describe(self) -> str:
        c = self.config
        if c.type == "charuco":
            return f"ChArUco {c.rows}x{c.cols} squares of {c.square * 1000:g} mm, markers {c.marker * 1000:g} mm, {c.dict}"
        return f"checkerboard {c.corners} inner corners, squares of {c.square * 1000:g} mm"

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """Corners ``(N, 2)`` (NaN where unseen) in a BGR or grey image, or None when the board is not usable
        (too few corners, or all on one line, which fixes no pose)."""
        import cv2

        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        out = np.full((self.num_corners, 2), np.nan)
        if self.config.type == "charuco":
            corners, ids, _, _ = self._detector.detectBoard(gray)
            if ids is None or len(ids) < self.min_corners:
                return None
            ids = ids.ravel()
            seen = self.object_points[ids]
            if len(np.unique(seen[:, 0])) < 2 or len(np.unique(seen[:, 1])) < 2:
                return None
            out[ids] = _refine(gray, corners.reshape(-1, 2) - 0.5, seen, self._gap)
            return out
        flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
        found, corners = cv2.findChessboardCorners(gray, self.pattern, flags)
        if not found:
            return None
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
        corners = cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1), criteria)
        return corners.reshape(-1, 2).astype(np.float64)


def _refine(gray: np.ndarray, corners: np.ndarray, board_xy: np.ndarray, gap: float) -> np.ndarray:
    """Re-run ``cornerSubPix`` on ChArUco corners: OpenCV <= 4.12's ``CharucoDetector`` returns them shifted by
    +0.5 px (opencv/opencv#25539, fixed by #28380), which biases every calibration; the refinement converges to
    the saddle point from either side, so this stays right once OpenCV is fixed."""
    import cv2

    # the window must stay inside the white gap between a corner and the nearest marker, or the marker's
    # edges pull the corner: half-window under that gap on the most foreshortened square seen
    d_img = np.linalg.norm(corners[:, None] - corners[None], axis=-1)
    d_obj = np.linalg.norm(board_xy[:, None, :2] - board_xy[None, :, :2], axis=-1)
    np.fill_diagonal(d_obj, np.inf)
    square_px = np.min(d_img[np.isclose(d_obj, d_obj.min())])
    half = int(np.clip(square_px * gap * 0.8, 2, 12))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    pts = np.ascontiguousarray(corners, dtype=np.float32).reshape(-1, 1, 2)
    return cv2.cornerSubPix(gray, pts, (half, half), (-1, -1), criteria).reshape(-1, 2).astype(np.float64)


def detect_footage(board: Board, camera: str, source: str | os.PathLike, stride: int = 1,
                   progress: Progress | None = None) -> BoardDetections:
    """Detect ``board`` in every ``stride``-th frame of a video file or image folder."""
    from mocap.io.video import probe, read_frames

    info = probe(source)
    frames, corners = [], []
    total = info.frames
    for i, image in enumerate(read_frames(source)):
        if i % stride == 0:
            if (image.shape[1], image.shape[0]) != (info.width, info.height):
                raise InputDataError(f"{source}: frame {i} is {image.shape[1]}x{image.shape[0]}, "
                                     f"the first {info.width}x{info.height}; all frames must share one size")
            found = board.detect(image)
            if found is not None:
                frames.append(i)
                corners.append(found)
        if progress is not None:
            progress(i + 1, total)
    corners_arr = np.stack(corners) if corners else np.zeros((0, board.num_corners, 2))
    return BoardDetections(camera, Path(source), (info.width, info.height), np.asarray(frames, dtype=np.int64),
                           corners_arr, total)
