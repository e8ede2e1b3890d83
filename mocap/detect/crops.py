"""Person crops as ReFit (and SPIN/HMR before it) sees them.

Conventions (SPIN ``utils/imutils.py``):
- a crop is a ``center`` (cx, cy) in image pixels and a ``scale``: the crop is the square of side
  ``200 * scale`` pixels centred on ``center``;
- from a person box, ``scale = rescale * max(box width, box height) / 200`` with ``rescale = 1.2``
  (the margin around the person), centre = box centre;
- the square is resized to ``res x res`` (256); pixels outside the image are black;
- image -> crop pixels: ``u = res * ((x - cx) / (200 * scale) + 0.5)`` (SPIN's ``get_transform``);
- keypoints given to the network are ``2 * u / res - 1`` (SPIN's ``j2d_processing``), in [-1, 1];
- the image tensor is RGB in [0, 1], normalised by the ImageNet mean and std, ``(3, res, res)``.

SPIN rounds the square's corners to whole pixels and truncates keypoints to integers (with a 1-based
shift); we keep the corner rounding (the crop is a slice of the image, then an area-averaging resize,
which anti-aliases a 4x downscale where a bilinear warp would not) but return the exact matrix of the
crop actually taken, so keypoints map onto the crop to a fraction of a pixel.

Pixel coordinates have pixel centres at integers (OpenCV's convention).
"""

from __future__ import annotations

import warnings

import numpy as np

from mocap.errors import InputDataError

RES = 256
RESCALE = 1.2
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB
IMAGENET_STD = (0.229, 0.224, 0.225)


def box_from_keypoints(keypoints: np.ndarray, min_confidence: float = 0.3) -> np.ndarray:
    """Tight box ``(..., 4)`` (x0, y0, x1, y1) of the keypoints ``(..., K, 3)`` with confidence >= ``min_confidence``.

    NaN where fewer than two keypoints qualify.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    ok = (kp[..., 2] >= min_confidence) & np.isfinite(kp[..., :2]).all(-1)
    xy = np.where(ok[..., None], kp[..., :2], np.nan)
    with warnings.catch_warnings():  # all-NaN rows are expected (no detection)
        warnings.simplefilter("ignore", RuntimeWarning)
        box = np.concatenate([np.nanmin(xy, -2), np.nanmax(xy, -2)], -1)
    box[ok.sum(-1) < 2] = np.nan
    return box


def center_scale(box: np.ndarray, rescale: float = RESCALE) -> tuple[np.ndarray, np.ndarray]:
    """SPIN centre ``(..., 2)`` and scale ``(...)`` of the square crop around boxes ``(..., 4)``."""
    box = np.asarray(box, dtype=np.float64)
    center = (box[..., :2] + box[..., 2:]) / 2
    side = np.maximum(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1])
    return center, rescale * side / 200.0


def spin_transform(center: np.ndarray, scale: np.ndarray | float, res: int = RES) -> np.ndarray:
    """SPIN's image -> crop affine map ``(..., 2, 3)`` (continuous: no corner rounding)."""
    center = np.asarray(center, dtype=np.float64)
    h = 200.0 * np.asarray(scale, dtype=np.float64)
    M = np.zeros(center.shape[:-1] + (2, 3))
    M[..., 0, 0] = M[..., 1, 1] = res / h
    M[..., :, 2] = res * (-center / h[..., None] + 0.5)
    return M


def apply(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points ``(..., N, 2)`` by affine maps ``(..., 2, 3)``."""
    return np.einsum("...ij,...nj->...ni", M[..., :2], points) + M[..., None, :, 2]


def normalize_keypoints(points_crop: np.ndarray, res: int = RES) -> np.ndarray:
    """Crop pixels -> the network's [-1, 1] keypoint coordinates."""
    return 2.0 * np.asarray(points_crop) / res - 1.0


def crop_image(image: np.ndarray, center, scale: float, res: int = RES) -> tuple[np.ndarray, np.ndarray]:
    """Cut the SPIN crop of ``image`` ``(H, W, C)`` uint8; returns the crop ``(res, res, C)`` and its map ``(2, 3)``.

    The map takes image pixels to crop pixels for this very crop (corners rounded to whole pixels).
    """
    import cv2

    cx, cy = (float(c) for c in center)
    side_f = 200.0 * float(scale)
    if not np.isfinite([cx, cy, side_f]).all() or side_f < 1.0:
        raise InputDataError(f"crop centre {center} / scale {scale} is not a usable crop")
    x0, y0 = int(round(cx - side_f / 2)), int(round(cy - side_f / 2))
    side = max(1, int(round(side_f)))
    H, W = image.shape[:2]
    # Slice what lies inside the image, pad the rest with black.
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, W), min(y0 + side, H)
    square = np.zeros((side, side) + image.shape[2:], image.dtype)
    if sx1 > sx0 and sy1 > sy0:
        square[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if side > res else cv2.INTER_LINEAR
    crop = cv2.resize(square, (res, res), interpolation=interp)
    # cv2.resize maps pixel centres as u = (x + 0.5) * res / side - 0.5.
    k = res / side
    M = np.array([[k, 0.0, (0.5 - x0) * k - 0.5], [0.0, k, (0.5 - y0) * k - 0.5]])
    return crop, M


def image_tensor(crops: np.ndarray):
    """BGR uint8 crops ``(..., res, res, 3)`` -> float32 torch tensor ``(..., 3, res, res)``, RGB, ImageNet-normalised."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(np.asarray(crops)[..., ::-1])).float().div_(255.0)
    x = (x - torch.tensor(IMAGENET_MEAN, dtype=x.dtype)) / torch.tensor(IMAGENET_STD, dtype=x.dtype)
    return x.movedim(-1, -3).contiguous()
