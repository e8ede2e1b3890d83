"""The layout of several views in one image: the overlays' grid video and the report's stills."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def even(n: float) -> int:
    """``n`` rounded to an even size, at least 2: yuv420p halves both sizes."""
    return max(2, int(round(n / 2)) * 2)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the smallest near-square grid holding ``n`` views: 4 -> 2x2, 6 -> 2x3."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def fit_grid(n: int, aspect: float, box: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (rows, cols) layout of ``n`` views of width / height ``aspect`` whose cells are largest inside ``box``
    (w, h), and that cell's (w, h): four portrait views fill a wide box best in one row, four landscape in 2x2."""
    best = None
    for rows in range(1, n + 1):
        cols = math.ceil(n / rows)
        h = min(box[1] / rows, box[0] / (cols * aspect))
        if best is None or h > best[0] + 1e-9:
            best = (h, rows, cols)
    h, rows, cols = best
    return (rows, cols), (even(h * aspect), even(h))


def tile(images: Sequence[np.ndarray], cell: tuple[int, int], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Images fitted (aspect kept, letterboxed) into ``cell`` (w, h) tiles of a grid (``shape`` (rows, cols),
    near-square by default)."""
    import cv2

    rows, cols = shape or grid_shape(len(images))
    cw, ch = cell
    out = np.zeros((rows * ch, cols * cw, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        s = min(cw / img.shape[1], ch / img.shape[0])
        w, h = max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))
        # Bilinear where a view shrinks by less than half: as sharp as area averaging there, at an eighth of the
        # CPU (OpenCV's area averaging is slow for factors that are not whole).
        interpolation = cv2.INTER_LINEAR if s >= 0.5 else cv2.INTER_AREA
        small = img if (w, h) == img.shape[1::-1] else cv2.resize(img, (w, h), interpolation=interpolation)
        r, c = divmod(i, cols)
        y, x = r * ch + (ch - h) // 2, c * cw + (cw - w) // 2
        out[y:y + h, x:x + w] = small
    return out
