"""Subject shape files (``mocap shape`` -> ``--shape subject.npz``): one betas vector and its provenance.

Keys: ``betas`` (10,), ``gender``, ``surface_model`` (the body model the betas belong to), ``error_px`` (mean
reprojection error of the shape fit), ``frames`` (the frames it used), ``meta`` (JSON string).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap.errors import InputDataError
from mocap.io.atomic import atomic_buffer

_REQUIRED = ("betas", "gender", "surface_model")


@dataclass(frozen=True, eq=False)
class SubjectShape:
    betas: np.ndarray  # (10,)
    gender: str
    surface_model: str
    error_px: float = float("nan")
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    meta: dict = field(default_factory=dict)


def save_subject(path: str | os.PathLike, shape: SubjectShape) -> Path:
    arrays = {"betas": np.asarray(shape.betas, dtype=np.float64), "gender": np.array(shape.gender),
              "surface_model": np.array(shape.surface_model), "error_px": np.array(shape.error_px),
              "frames": np.asarray(shape.frames), "meta": np.array(json.dumps(shape.meta, sort_keys=True, default=str))}
    with atomic_buffer(path) as buf:
        np.savez(buf, **arrays)
    return Path(path)


def load_subject(path: str | os.PathLike) -> SubjectShape:
    """Read a subject file; errors name the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: subject shape file not found (make one with `mocap shape`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise InputDataError(f"{path}: not a readable npz file ({e})") from None
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise InputDataError(f"{path}: not a subject shape file, lacks {', '.join(missing)}")
    betas = np.asarray(data["betas"], dtype=np.float64).reshape(-1)
    if betas.shape != (10,) or not np.isfinite(betas).all():
        raise InputDataError(f"{path}: betas must be 10 finite numbers, got shape {betas.shape}")
    return SubjectShape(betas=betas, gender=str(data["gender"]), surface_model=str(data["surface_model"]),
                        error_px=float(data.get("error_px", np.nan)), frames=data.get("frames", np.zeros(0, np.int64)),
                        meta=json.loads(str(data["meta"])) if "meta" in data else {})
