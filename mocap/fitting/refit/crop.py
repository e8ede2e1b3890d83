"""Crop geometry of ReFit/CLIFF: where a 256x256 crop lies in its full image, and the full-frame camera.

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

__all__ = ["CROP_SIZE", "CropGeometry", "crop_image", "boxes_to_center_scale", "IMAGENET_MEAN", "IMAGENET_STD"]

CROP_SIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def boxes_to_center_scale(boxes: np.ndarray, margin: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """``(*, 4)`` person boxes ``x0, y0, x1, y1`` -> centres ``(*, 2)`` and scales ``(*,)`` of square crops
    ``margin`` times the box's longer side (ReFit's demo uses 1.2)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    center = (boxes[..., :2] + boxes[..., 2:]) / 2
    side = np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]) * margin
    return center, side / 200


def crop_image(image: np.ndarray, center, scale: float) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB image -> ``(3, 256, 256)`` float32 ImageNet-normalised crop; outside the image
    is black, as in training.

    The affine map is exactly :meth:`CropGeometry.to_crop`, so reprojections land on the crop's pixels.
    """
    import cv2

    cx, cy = (float(v) for v in center)
    k = CROP_SIZE / (200 * float(scale))
    A = np.array([[k, 0, -(cx - 100 * scale) * k], [0, k, -(cy - 100 * scale) * k]], dtype=np.float64)
    crop = cv2.warpAffine(image, A, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    crop = (crop.astype(np.float32) / 255 - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(crop.transpose(2, 0, 1))
