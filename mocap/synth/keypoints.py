"""Synthetic 2D detections: the true body keypoints projected into every camera, then spoiled the way real
detectors spoil them.

- Gaussian pixel noise of ``noise`` px on every kept keypoint;
- outliers (share ``outliers``): a keypoint moved far with high confidence: half are left/right swaps (the
  keypoint takes its mirror partner's position, the commonest gross error of real detectors), half a jump of
  60-300 px in a random direction;
- occlusions (share ``occlusion``): coherent over a few frames, as a limb stays hidden; half are dropped
  (NaN), half kept with low confidence (0.05-0.3) and three times the noise;
- keypoints outside the image or behind the camera are missing (NaN).

Confidences of good keypoints are drawn from 0.7-1.0. Arrays are ``(F, V, K, ...)``: frames, views, keypoints.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mocap.cameras import CameraRig
from mocap.errors import ConfigError


@dataclass(frozen=True)
class Corruption:
    noise: float = 3.0
    """Gaussian pixel noise, standard deviation in px."""
    outliers: float = 0.05
    """Share of visible keypoints replaced by gross errors with high confidence."""
    occlusion: float = 0.1
    """Share of visible keypoints occluded (dropped or low confidence)."""

    def __post_init__(self) -> None:
        if self.noise < 0:
            raise ConfigError(f"--noise {self.noise}: the pixel noise must be >= 0")
        for name in ("outliers", "occlusion"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"--{name} {v}: must be a share between 0 and 1")
        if self.outliers + self.occlusion > 1:
            raise ConfigError("--outliers plus --occlusion exceed 1")


@dataclass(frozen=True)
class SyntheticDetections:
    keypoints: np.ndarray  # (F, V, K, 3) x, y, confidence; NaN where missing
    clean: np.ndarray  # (F, V, K, 2) true projections (distorted pixels), NaN outside the image or behind
    outlier: np.ndarray  # (F, V, K) bool
    occluded: np.ndarray  # (F, V, K) bool


def mirror_index(names: tuple[str, ...]) -> np.ndarray:
    """``(K,)`` index of each keypoint's left/right partner (itself when it has none), from the names."""
    def swap(n: str) -> str:
        return n.replace("left", "\0").replace("right", "left").replace("\0", "right")

    pos = {n: i for i, n in enumerate(names)}
    return np.array([pos.get(swap(n), i) for i, n in enumerate(names)])


def project_visible(rig: CameraRig, points: np.ndarray) -> np.ndarray:
    """World points ``(F, K, 3)`` -> pixels ``(F, V, K, 2)``, NaN behind a camera or outside its image."""
    X = np.asarray(points, dtype=np.float64)[:, None]  # (F, 1, K, 3) broadcast over views
    uv = rig.project(X)  # (F, V, K, 2)
    depth = np.einsum("vij,fkj->fvki", rig.R, points)[..., 2] + rig.t[None, :, None, 2]
    size = rig.image_sizes[None, :, None].astype(float)  # (1, V, 1, 2)
    inside = (depth > 0.05) & np.all((uv >= -0.5) & (uv <= size - 0.5), axis=-1)
    return np.where(inside[..., None], uv, np.nan)


def _coherent_mask(rng: np.random.Generator, shape: tuple[int, ...], share: float, frames_sigma: float) -> np.ndarray:
    """Boolean mask with ``share`` of True, in runs of a few frames along axis 0."""
    if share <= 0:
        return np.zeros(shape, bool)
    field = rng.standard_normal(shape)
    if shape[0] > 1:
        field = gaussian_filter1d(field, frames_sigma, axis=0, mode="wrap")
    return field > np.quantile(field, 1 - share)


def corrupt(rig: CameraRig, points: np.ndarray, names: tuple[str, ...], corruption: Corruption,
            rng: np.random.Generator) -> SyntheticDetections:
    """Detections of world keypoints ``points`` (F, K, 3) in every camera of ``rig``."""
    clean = project_visible(rig, points)
    F, V, K, _ = clean.shape
    visible = np.isfinite(clean[..., 0])
    uv = clean + rng.normal(0.0, corruption.noise, clean.shape)
    conf = rng.uniform(0.7, 1.0, (F, V, K))

    occluded = _coherent_mask(rng, (F, V, K), corruption.occlusion, 4.0) & visible
    dropped = occluded & (rng.random((F, V, K)) < 0.5)
    faint = occluded & ~dropped
    uv[faint] += rng.normal(0.0, 2 * corruption.noise, (int(faint.sum()), 2))
    conf[faint] = rng.uniform(0.05, 0.3, int(faint.sum()))

    outlier = (rng.random((F, V, K)) < corruption.outliers / max(1e-9, 1 - corruption.occlusion)) & visible & ~occluded
    partner = mirror_index(names)
    swap = outlier & (rng.random((F, V, K)) < 0.5) & (partner != np.arange(K))
    swapped = clean[:, :, partner]
    # A swap onto a partner outside the image falls back to a jump.
    swap &= np.isfinite(swapped[..., 0])
    jump = outlier & ~swap
    uv[swap] = swapped[swap] + rng.normal(0.0, corruption.noise, (int(swap.sum()), 2))
    angle = rng.uniform(0, 2 * np.pi, int(jump.sum()))
    radius = rng.uniform(60, 300, int(jump.sum()))
    uv[jump] = clean[jump] + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    conf[outlier] = rng.uniform(0.75, 1.0, int(outlier.sum()))

    keep = visible & ~dropped
    kp = np.concatenate([uv, conf[..., None]], -1)
    kp[~keep] = np.nan
    return SyntheticDetections(kp, clean, outlier, occluded)


def boxes_from_keypoints(kp: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(F, V, K, 3)`` -> person boxes ``(F, V, 4)`` (x0, y0, x1, y1, padded by ``margin`` of the size) and
    ``detected`` ``(F, V)``; NaN boxes where no keypoint is present."""
    xy = kp[..., :2]
    detected = np.isfinite(xy[..., 0]).any(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN views: handled through `detected`
        lo, hi = np.nanmin(xy, axis=2), np.nanmax(xy, axis=2)
    pad = (hi - lo) * margin
    boxes = np.concatenate([lo - pad, hi + pad], -1)
    boxes[~detected] = np.nan
    return boxes, detected
