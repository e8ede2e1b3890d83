"""Pinhole cameras with OpenCV's distortion model, in numpy and torch from one definition.

Conventions:
- ``R`` (3, 3) and ``t`` (3,) map world to camera: ``X_cam = R @ X_world + t``; metres.
- Camera frame as OpenCV: x right, y down, z forward. Pixels: (0, 0) is the centre of the top-left pixel.
- ``dist`` (5,) is OpenCV's ``(k1, k2, p1, p2, k3)``.
- ``image_size`` is ``(width, height)`` in pixels.

Every function here takes numpy arrays or torch tensors (differentiable) and broadcasts camera
parameters over leading axes: points ``(*, N, 3)`` with ``R`` ``(*, 3, 3)``, ``t`` ``(*, 3)``,
``K`` ``(*, 3, 3)``, ``dist`` ``(*, 5)``, where the ``*`` axes broadcast (e.g. points ``(F, V, J, 3)``
with a rig's ``R`` ``(V, 3, 3)``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from mocap.errors import InputDataError


def _is_torch(x) -> bool:
    # A tensor exists only once torch is imported: numpy-only callers (the overlays) never pay for importing it.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _stack(arrays, axis: int):
    return sys.modules["torch"].stack(arrays, axis) if _is_torch(arrays[0]) else np.stack(arrays, axis)


def _transpose(M):
    return M.transpose(-1, -2) if _is_torch(M) else np.swapaxes(M, -1, -2)


def world_to_camera(X, R, t):
    """``(*, N, 3)`` world points -> camera frame."""
    return X @ _transpose(R) + t[..., None, :]


def camera_to_world(X, R, t):
    """``(*, N, 3)`` camera-frame points -> world frame."""
    return (X - t[..., None, :]) @ R


def camera_centers(R, t):
    """``(*, 3)`` camera centres in the world frame: ``C = -R^T t``."""
    return -(_transpose(R) @ t[..., :, None])[..., 0]


def distort(xy, dist):
    """Apply OpenCV's radial-tangential model to normalised image coordinates ``(*, N, 2)``."""
    x, y = xy[..., 0], xy[..., 1]
    d = dist[..., None, :]
    k1, k2, p1, p2, k3 = (d[..., i] for i in range(5))
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return _stack([xd, yd], -1)


def project_camera_points(X_cam, K, dist):
    """``(*, N, 3)`` camera-frame points -> ``(*, N, 2)`` pixels (distorted), as ``cv2.projectPoints``."""
    xy = X_cam[..., :2] / X_cam[..., 2:3]
    xy = distort(xy, dist)
    Kb = K[..., None, :, :]
    u = Kb[..., 0, 0] * xy[..., 0] + Kb[..., 0, 2]
    v = Kb[..., 1, 1] * xy[..., 1] + Kb[..., 1, 2]
    return _stack([u, v], -1)


def project(X, K, dist, R, t):
    """``(*, N, 3)`` world points -> ``(*, N, 2)`` pixels. Points behind the camera give meaningless pixels;
    check ``world_to_camera(...)[..., 2] > 0`` where that matters."""
    return project_camera_points(world_to_camera(X, R, t), K, dist)


def undistort_pixels(uv: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """``(N, 2)`` distorted pixels of one camera -> ``(N, 2)`` normalised, undistorted coordinates.

    OpenCV's iterative solver with a tight stopping rule (its default of 5 iterations leaves ~1e-3 px
    at the image corners with strong distortion).
    """
    import cv2

    pts = np.ascontiguousarray(uv, dtype=np.float64).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)
    out = cv2.undistortPointsIter(pts, K.astype(np.float64), dist.astype(np.float64), None, None, criteria)
    return out.reshape(-1, 2)


def look_at(center: np.ndarray, target: np.ndarray, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``R`` (3, 3), ``t`` (3,) of a camera at ``center`` looking at ``target`` with world y (up) on the image's
    up side (OpenCV camera frame: x right, y down, z forward), then rolled by ``roll`` radians."""
    center, target = np.asarray(center, dtype=np.float64), np.asarray(target, dtype=np.float64)
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    R = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.stack([x, y, z])
    return R, -R @ center


def _as_array(value, shape: tuple[int, ...], what: str, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise InputDataError(f"camera {name!r}: {what} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise InputDataError(f"camera {name!r}: {what} contains NaN or infinity")
    return arr


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera. See the module docstring for conventions."""

    name: str
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (5,) k1, k2, p1, p2, k3
    R: np.ndarray  # (3, 3) world -> camera
    t: np.ndarray  # (3,) metres
    image_size: tuple[int, int]  # (width, height) pixels

    def __post_init__(self) -> None:
        K = _as_array(self.K, (3, 3), "K", self.name)
        # OpenCV's model (projectPoints, calibrateCamera) has no skew; refuse rather than silently drop it.
        if abs(K[0, 1]) > 1e-9 * abs(K[0, 0]) or np.any(K[2] != (0, 0, 1)) or K[1, 0] != 0:
            raise InputDataError(f"camera {self.name!r}: K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise InputDataError(f"camera {self.name!r}: focal lengths fx={K[0, 0]:g}, fy={K[1, 1]:g} px must be positive")
        object.__setattr__(self, "K", K)
        dist = np.zeros(5)
        given = np.asarray(self.dist, dtype=np.float64).ravel()
        if given.size > 5:
            raise InputDataError(f"camera {self.name!r}: {given.size} distortion coefficients, at most 5 supported")
        dist[: given.size] = given
        object.__setattr__(self, "dist", _as_array(dist, (5,), "dist", self.name))
        R = _as_array(self.R, (3, 3), "R", self.name)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise InputDataError(f"camera {self.name!r}: R is not a rotation matrix")
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "t", _as_array(self.t, (3,), "t", self.name))
        w, h = (int(v) for v in self.image_size)
        if w <= 0 or h <= 0:
            raise InputDataError(f"camera {self.name!r}: image size {self.image_size} must be positive")
        object.__setattr__(self, "image_size", (w, h))

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in the world frame."""
        return camera_centers(self.R, self.t)

    def project(self, X: np.ndarray) -> np.ndarray:
        """``(*, 3)`` world points -> ``(*, 2)`` pixels."""
        X = np.asarray(X, dtype=np.float64)
        flat = X.reshape(-1, 3)
        return project(flat, self.K, self.dist, self.R, self.t).reshape(*X.shape[:-1], 2)

    def to_camera(self, X: np.ndarray) -> np.ndarray:
        """``(*, 3)`` world points -> camera frame."""
        X = np.asarray(X, dtype=np.float64)
        return world_to_camera(X.reshape(-1, 3), self.R, self.t).reshape(X.shape)

    def to_world(self, X_cam: np.ndarray) -> np.ndarray:
        """``(*, 3)`` camera-frame points -> world frame."""
        X_cam = np.asarray(X_cam, dtype=np.float64)
        return camera_to_world(X_cam.reshape(-1, 3), self.R, self.t).reshape(X_cam.shape)

    def undistort(self, uv: np.ndarray) -> np.ndarray:
        """``(*, 2)`` distorted pixels -> ``(*, 2)`` undistorted pixels (same K, no distortion)."""
        uv = np.asarray(uv, dtype=np.float64)
        xy = undistort_pixels(uv.reshape(-1, 2), self.K, self.dist)
        return project_camera_points(np.concatenate([xy, np.ones((len(xy), 1))], 1), self.K, np.zeros(5)).reshape(uv.shape)

    def rays(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Viewing rays through ``(*, 2)`` pixels: origin ``(3,)`` (the centre) and unit directions ``(*, 3)`` in the world."""
        uv = np.asarray(uv, dtype=np.float64)
        xy = undistort_pixels(uv.reshape(-1, 2), self.K, self.dist)
        d = np.concatenate([xy, np.ones((len(xy), 1))], 1) @ self.R
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return self.center, d.reshape(*uv.shape[:-1], 3)

    def in_front(self, X: np.ndarray) -> np.ndarray:
        """``(*,)`` bool: world points with positive depth."""
        return self.to_camera(X)[..., 2] > 0


@dataclass(frozen=True, eq=False)
class CameraRig:
    """An ordered set of cameras, addressable by index or name."""

    cameras: tuple[Camera, ...]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        cams = tuple(self.cameras)
        if not cams:
            raise InputDataError("a camera rig needs at least one camera")
        names = [c.name for c in cams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputDataError(f"camera names must be unique; repeated: {', '.join(dupes)}")
        object.__setattr__(self, "cameras", cams)
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self) -> Iterator[Camera]:
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> Camera:
        if isinstance(key, str):
            if key not in self._index:
                raise InputDataError(f"no camera named {key!r}; cameras are {', '.join(self.names)}")
            return self.cameras[self._index[key]]
        return self.cameras[key]

    def __contains__(self, name: str) -> bool:
        return name in self._index

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def subset(self, names: Sequence[str]) -> "CameraRig":
        """A rig of the named cameras, in the order given."""
        return CameraRig(tuple(self[n] for n in names))

    @property
    def K(self) -> np.ndarray:
        """(V, 3, 3)"""
        return np.stack([c.K for c in self.cameras])

    @property
    def dist(self) -> np.ndarray:
        """(V, 5)"""
        return np.stack([c.dist for c in self.cameras])

    @property
    def R(self) -> np.ndarray:
        """(V, 3, 3)"""
        return np.stack([c.R for c in self.cameras])

    @property
    def t(self) -> np.ndarray:
        """(V, 3)"""
        return np.stack([c.t for c in self.cameras])

    @property
    def centers(self) -> np.ndarray:
        """(V, 3) camera centres in the world frame."""
        return camera_centers(self.R, self.t)

    @property
    def image_sizes(self) -> np.ndarray:
        """(V, 2) (width, height)."""
        return np.array([c.image_size for c in self.cameras], dtype=np.int64)

    def project(self, X: np.ndarray) -> np.ndarray:
        """World points ``(*, V, N, 3)`` (or ``(N, 3)``, seen by every camera) -> pixels ``(*, V, N, 2)``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 2:
            X = np.broadcast_to(X, (len(self), *X.shape))
        return project(X, self.K, self.dist, self.R, self.t)

    def torch_params(self, dtype=None, device=None) -> dict[str, "torch.Tensor"]:
        """``K``, ``dist``, ``R``, ``t`` as tensors for the differentiable functions above."""
        import torch

        dtype = dtype or torch.float32
        return {k: torch.as_tensor(getattr(self, k), dtype=dtype, device=device) for k in ("K", "dist", "R", "t")}
