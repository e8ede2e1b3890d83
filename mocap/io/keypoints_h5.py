"""2D keypoints of every view in one HDF5 file (``output/keypoints2d.h5``).

Layout (one group per camera, so views can be added one by one and read by name)::

    /                      attrs: format_version, keypoint_format, keypoint_names (JSON), fps, meta (JSON)
    /<camera>/keypoints    (F, K, 3) float32: pixel x, pixel y, confidence; NaN where not detected
    /<camera>/boxes        (F, 4) float32: x0, y0, x1, y1 of the person; NaN where not detected
    /<camera>/detected     (F,) uint8: 1 where the detector found the person
    /<camera>              attrs: image_size (width, height), plus per-view metadata

Frames are never dropped or shifted: frame f of every view is the same instant.
In memory the views are stacked as ``(F, V, K, 3)`` (frame, view, keypoint, xyc).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mocap.errors import InputDataError
from mocap.io.atomic import atomic_path

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class Keypoints2D:
    """Detections of V views over F frames, K keypoints of one format."""

    cameras: tuple[str, ...]  # (V,)
    keypoints: np.ndarray  # (F, V, K, 3) x, y, confidence
    boxes: np.ndarray  # (F, V, 4)
    detected: np.ndarray  # (F, V) bool
    image_sizes: np.ndarray  # (V, 2) width, height
    format: str  # e.g. "blazepose33"
    names: tuple[str, ...]  # (K,)
    fps: float
    meta: dict = field(default_factory=dict)
    view_meta: tuple[dict, ...] | None = None  # (V,) per-view metadata, e.g. the source video

    def __post_init__(self) -> None:
        V, K = len(self.cameras), len(self.names)
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim != 4 or kp.shape[1:] != (V, K, 3):
            raise InputDataError(f"keypoints have shape {kp.shape}, expected (F, {V}, {K}, 3)")
        F = kp.shape[0]
        boxes = np.asarray(self.boxes, dtype=np.float32)
        detected = np.asarray(self.detected, dtype=bool)
        sizes = np.asarray(self.image_sizes, dtype=np.int64)
        for name, arr, shape in (("boxes", boxes, (F, V, 4)), ("detected", detected, (F, V)), ("image_sizes", sizes, (V, 2))):
            if arr.shape != shape:
                raise InputDataError(f"{name} have shape {arr.shape}, expected {shape}")
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "detected", detected)
        object.__setattr__(self, "image_sizes", sizes)
        vm = tuple(self.view_meta) if self.view_meta is not None else tuple({} for _ in range(V))
        object.__setattr__(self, "view_meta", vm)

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    def select(self, cameras: Sequence[str]) -> "Keypoints2D":
        """The named views, in the order given."""
        missing = [c for c in cameras if c not in self.cameras]
        if missing:
            raise InputDataError(f"no keypoints for camera(s) {', '.join(missing)}; have {', '.join(self.cameras)}")
        idx = [self.cameras.index(c) for c in cameras]
        return Keypoints2D(tuple(cameras), self.keypoints[:, idx], self.boxes[:, idx], self.detected[:, idx],
                           self.image_sizes[idx], self.format, self.names, self.fps, dict(self.meta),
                           tuple(self.view_meta[i] for i in idx))


def _json_attr(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _write_root(f, kp: Keypoints2D) -> None:
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["keypoint_format"] = kp.format
    f.attrs["keypoint_names"] = _json_attr(list(kp.names))
    f.attrs["fps"] = float(kp.fps)
    f.attrs["meta"] = _json_attr(kp.meta)


def _write_view(f, kp: Keypoints2D, v: int) -> None:
    g = f.create_group(kp.cameras[v])
    g.create_dataset("keypoints", data=kp.keypoints[:, v], compression="gzip", compression_opts=4)
    g.create_dataset("boxes", data=kp.boxes[:, v])
    g.create_dataset("detected", data=kp.detected[:, v].astype(np.uint8))
    g.attrs["image_size"] = kp.image_sizes[v]
    g.attrs["meta"] = _json_attr(kp.view_meta[v])


def write_keypoints(path: str | os.PathLike, kp: Keypoints2D) -> Path:
    """Write all views atomically (temporary file, then rename)."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _write_root(f, kp)
            for v in range(len(kp.cameras)):
                _write_view(f, kp, v)
    return Path(path)


def merge_views(path: str | os.PathLike, kp: Keypoints2D) -> Path:
    """Add the views of ``kp`` to the file at ``path`` (created when absent), replacing same-named views.

    The file is rewritten whole into a temporary file and renamed, so a crash leaves the previous
    complete file. The views already there must share ``kp``'s keypoint format and frame count; the file's
    metadata becomes ``kp.meta``.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        return write_keypoints(path, kp)
    try:
        old = h5py.File(path, "r")
    except OSError as e:
        raise InputDataError(f"{path}: unreadable HDF5 file ({e}); delete it or rerun with --force") from None
    with old, atomic_path(path) as tmp:
        fmt = old.attrs.get("keypoint_format")
        kept = [c for c in old.keys() if c not in kp.cameras]
        if kept and fmt != kp.format:
            raise InputDataError(f"{path}: holds {fmt} keypoints, cannot add {kp.format} views; "
                                 "replace the file (--force) or write elsewhere")
        for cam in kept:
            if old[cam]["keypoints"].shape[0] != kp.num_frames:
                raise InputDataError(f"{path}: camera {cam} has {old[cam]['keypoints'].shape[0]} frames, "
                                     f"the new views {kp.num_frames}; replace the file (--force)")
        with h5py.File(tmp, "w") as f:
            _write_root(f, kp)
            for cam in kept:
                old.copy(old[cam], f, name=cam)
            for v in range(len(kp.cameras)):
                _write_view(f, kp, v)
    return path


def read_view_meta(path: str | os.PathLike) -> tuple[str | None, dict[str, dict]]:
    """Keypoint format and per-camera metadata of a keypoints file, without loading the arrays.

    ``(None, {})`` when the file is absent or unreadable (it is then rewritten whole).
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs["keypoint_format"]), {c: json.loads(f[c].attrs.get("meta", "{}")) for c in f.keys()}
    except (OSError, KeyError, ValueError):
        return None, {}


def read_keypoints(path: str | os.PathLike, cameras: Sequence[str] | None = None) -> Keypoints2D:
    """Read the views ``cameras`` (all, in file order, when ``None``)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: keypoints file not found (run `mocap detect` first)")
    try:
        with h5py.File(path, "r") as f:
            for key in ("keypoint_format", "keypoint_names", "fps"):
                if key not in f.attrs:
                    raise InputDataError(f"{path}: not a mocap keypoints file (attribute {key!r} missing)")
            names = tuple(json.loads(f.attrs["keypoint_names"]))
            available = list(f.keys())
            wanted = list(cameras) if cameras is not None else available
            missing = [c for c in wanted if c not in f]
            if missing:
                raise InputDataError(f"{path}: no keypoints for camera(s) {', '.join(missing)}; file has {', '.join(available)}")
            if not wanted:
                raise InputDataError(f"{path}: the file holds no camera")
            per_view = []
            for cam in wanted:
                g = f[cam]
                for ds in ("keypoints", "boxes", "detected"):
                    if ds not in g:
                        raise InputDataError(f"{path}: camera {cam!r} lacks the dataset {ds!r}")
                per_view.append((g["keypoints"][()], g["boxes"][()], g["detected"][()].astype(bool),
                                 tuple(g.attrs["image_size"]), json.loads(g.attrs.get("meta", "{}"))))
            frames = {cam: pv[0].shape[0] for cam, pv in zip(wanted, per_view)}
            if len(set(frames.values())) > 1:
                raise InputDataError(f"{path}: views have different frame counts: {frames}")
            return Keypoints2D(
                cameras=tuple(wanted),
                keypoints=np.stack([pv[0] for pv in per_view], 1),
                boxes=np.stack([pv[1] for pv in per_view], 1),
                detected=np.stack([pv[2] for pv in per_view], 1),
                image_sizes=np.array([pv[3] for pv in per_view]),
                format=str(f.attrs["keypoint_format"]),
                names=names,
                fps=float(f.attrs["fps"]),
                meta=json.loads(f.attrs.get("meta", "{}")),
                view_meta=tuple(pv[4] for pv in per_view),
            )
    except OSError as e:
        raise InputDataError(f"{path}: unreadable HDF5 file ({e})") from None
