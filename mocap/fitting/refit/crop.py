"""Crop geometry of ReFit/CLIFF: where a 256x256 crop lies in its full image, and the full-frame camera.

Cutting crops and the ImageNet normalisation are :mod:`mocap.detect.crops` (SPIN's conventions, shared with
the detector); this module holds the camera side.

Conventions (as the released models were trained):
- a crop is the square box of side ``b = 200 * scale`` pixels centred on ``center``, resized to 256x256;
  full-image pixel ``p`` maps to crop pixel ``(p - (center - b/2)) * 256 / b``;
- ``cam = (s, tx, ty)`` is the weak-perspective crop camera the network regresses; with the full image's
  focal ``f`` and principal point ``c`` it is the camera-frame translation
  ``(tx + 2 (cx - c_x) / (b s), ty + 2 (cy - c_y) / (b s), 2 f / (b s))`` of the SMPL body (no ``transl``);
- ``bbox_info`` is CLIFF's box feature ``((cx - c_x) / f * 2.8, (cy - c_y) / f * 2.8, (b - 0.24 f) / (0.06 f))``.

Shapes: ``N`` crops, ``P`` points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["CROP_SIZE", "CropGeometry", "geometry_of_map"]

CROP_SIZE = 256


@dataclass(frozen=True)
class CropGeometry:
    """``N`` crops in their full images."""

    center: Tensor  # (N, 2) box centre, full-image pixels
    scale: Tensor  # (N,) box side / 200 px
    focal: Tensor  # (N,) full-image focal length, pixels
    img_center: Tensor  # (N, 2) full-image principal point, pixels

    @property
    def box_size(self) -> Tensor:
        return self.scale * 200

    def bbox_info(self) -> Tensor:
        """``(N, 3)`` CLIFF box feature."""
        f = self.focal
        xy = (self.center - self.img_center) / f[:, None] * 2.8
        return torch.cat([xy, ((self.box_size - 0.24 * f) / (0.06 * f))[:, None]], -1)

    def cam_to_translation(self, cam: Tensor) -> Tensor:
        """``(N, 3)`` crop camera ``(s, tx, ty)`` -> ``(N, 3)`` camera-frame translation, metres."""
        s, tx, ty = cam.unbind(-1)
        bs = self.box_size * s
        d = self.center - self.img_center
        return torch.stack([tx + 2 * d[:, 0] / bs, ty + 2 * d[:, 1] / bs, 2 * self.focal / bs], -1)

    def translation_to_cam(self, trans: Tensor) -> Tensor:
        """Inverse of :meth:`cam_to_translation` (``trans`` must have positive depth)."""
        bs = 2 * self.focal / trans[:, 2]
        d = self.center - self.img_center
        return torch.stack([bs / self.box_size, trans[:, 0] - 2 * d[:, 0] / bs, trans[:, 1] - 2 * d[:, 1] / bs], -1)

    def pinhole(self, points: Tensor) -> Tensor:
        """``(N, P, 3)`` camera-frame points -> ``(N, P, 2)`` full-image pixels (ideal pinhole, as ReFit)."""
        return self.focal[:, None, None] * points[..., :2] / points[..., 2:] + self.img_center[:, None]

    def to_crop(self, pixels: Tensor) -> Tensor:
        """``(N, P, 2)`` full-image pixels -> crop pixels."""
        b = self.box_size
        return (pixels - (self.center - b[:, None] / 2)[:, None]) * (CROP_SIZE / b)[:, None, None]

    def index(self, idx) -> "CropGeometry":
        return CropGeometry(self.center[idx], self.scale[idx], self.focal[idx], self.img_center[idx])


def geometry_of_map(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``center (..., 2)`` and ``scale (...)`` whose :meth:`CropGeometry.to_crop` is the image -> crop map
    ``M (..., 2, 3)`` of a crop actually cut (:func:`mocap.detect.crops.crop_image` rounds its corners to
    whole pixels, so the box asked for and the crop taken differ by a fraction of a pixel)."""
    M = np.asarray(M, dtype=np.float64)
    k = M[..., 0, 0]
    center = (CROP_SIZE / 2 - M[..., :, 2]) / k[..., None]
    return center, CROP_SIZE / (200 * k)
