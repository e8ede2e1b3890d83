"""A ring of cameras around the capture volume, with realistic random intrinsics.

World frame y up, floor at y = 0, the volume centred on the origin. Cameras stand on a ring 3-5 m from the
centre at 1-2.5 m height, look at a point near the volume centre at chest height, and have 1080p or 4K
sensors, focal lengths of 1000-2000 px (long ones only where a standing person still fits the frame) and
mild radial-tangential distortion (at most a few percent displacement at the image corners).
"""

from __future__ import annotations

import numpy as np

from mocap.cameras import Camera, CameraRig, look_at
from mocap.errors import ConfigError

MIN_CAMERAS, MAX_CAMERAS = 2, 12
RESOLUTIONS = ((1920, 1080), (3840, 2160))
FOCAL_RANGE = (1000.0, 2000.0)
RADIUS_RANGE = (3.0, 5.0)
HEIGHT_RANGE = (1.0, 2.5)


def _distortion(rng: np.random.Generator, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # Scale k1 by the corner radius so that "mild" means the same displacement for every field of view.
    w, h = size
    r2 = ((w / 2) / K[0, 0]) ** 2 + ((h / 2) / K[1, 1]) ** 2
    k1 = rng.uniform(-0.04, 0.02) / r2
    k2 = rng.uniform(-0.01, 0.01) / r2**2
    p1, p2 = rng.normal(0.0, 2e-4, 2)
    return np.array([k1, k2, p1, p2, 0.0])


def ring_rig(num_cameras: int, rng: np.random.Generator, target_height: float = 0.9, scale: float = 1.0) -> CameraRig:
    """``num_cameras`` (2-12) cameras named ``cam0``..., evenly spread in azimuth with jitter.

    ``scale`` shrinks every sensor (image size and pixel intrinsics) by that factor, e.g. 0.5 for quick renders;
    the same seed gives the same poses, lenses and fields of view at any scale."""
    if not MIN_CAMERAS <= num_cameras <= MAX_CAMERAS:
        raise ConfigError(f"--cameras {num_cameras}: choose {MIN_CAMERAS} to {MAX_CAMERAS} cameras")
    if not 0.1 <= scale <= 1.0:
        raise ConfigError(f"image scale {scale}: choose a factor between 0.1 and 1")
    cams = []
    phase = rng.uniform(0, 2 * np.pi)
    for i in range(num_cameras):
        azimuth = phase + 2 * np.pi * i / num_cameras + rng.uniform(-0.15, 0.15) * 2 * np.pi / num_cameras
        radius, height = rng.uniform(*RADIUS_RANGE), rng.uniform(*HEIGHT_RANGE)
        center = np.array([radius * np.sin(azimuth), height, radius * np.cos(azimuth)])
        target = np.array([0.0, target_height, 0.0]) + rng.normal(0.0, [0.2, 0.05, 0.2])
        R, t = look_at(center, target, roll=rng.normal(0.0, np.radians(1.0)))
        w, h = RESOLUTIONS[rng.integers(len(RESOLUTIONS))]
        # Long lenses only where the frame still holds a standing person (1.2 m above and below the target).
        f_fit = 0.9 * (h / 2) * np.linalg.norm(target - center) / 1.2
        f = rng.uniform(FOCAL_RANGE[0], np.clip(f_fit, *FOCAL_RANGE))
        K = np.array([[f * rng.uniform(0.998, 1.002), 0.0, (w - 1) / 2 + rng.normal(0, 4)],
                      [0.0, f, (h - 1) / 2 + rng.normal(0, 4)],
                      [0.0, 0.0, 1.0]])
        dist = _distortion(rng, K, (w, h))
        if scale != 1.0:
            # Pixel centres are integers: a pixel edge at -0.5 stays the image edge after scaling.
            K = np.diag([scale, scale, 1.0]) @ K + np.array([[0.0, 0.0, (scale - 1) / 2], [0.0, 0.0, (scale - 1) / 2], [0, 0, 0]])
            w, h = round(w * scale), round(h * scale)
        cams.append(Camera(f"cam{i}", K, dist, R, t, (w, h)))
    return CameraRig(tuple(cams))
