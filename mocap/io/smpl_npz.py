"""``output/smpl.npz``: a fitted sequence, AMASS-style, plus per-frame quality and provenance.

Keys: ``poses`` (F, 72) axis-angle (global orientation first), ``trans`` (F, 3) metres, ``betas`` (10,),
``gender``, ``mocap_framerate``, ``surface_model`` (the body model's name), all in the world frame (y up);
quality: ``reprojection_error_px`` (F, V), ``views_used`` (F, V), ``flags`` (F,) with ``flag_names`` (JSON
name -> bit), ``camera_names`` (V,); ``metadata`` (JSON: versions, resolved config, body model, calibration
sha256). Frames left empty are NaN. Subject shapes (``mocap shape``) use the same file type with ``betas``,
``gender``, ``surface_model``, ``error_px``, ``frames`` and ``metadata``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from mocap.errors import InputDataError
from mocap.io.atomic import atomic_path


def write_npz(path: str | os.PathLike, arrays: dict, metadata: dict) -> Path:
    """Write ``arrays`` plus ``metadata`` (as a JSON string) atomically, uncompressed."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, metadata=np.array(json.dumps(metadata, sort_keys=True, default=str)))
    return Path(path)


def read_npz(path: str | os.PathLike, required: tuple[str, ...]) -> dict:
    """Read arrays (strings unwrapped, ``metadata`` decoded); errors name the file and what lacks."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputDataError(f"{path}: not a readable npz file ({e})") from None
    missing = [k for k in required if k not in data]
    if missing:
        raise InputDataError(f"{path}: lacks {', '.join(missing)}")
    for k, v in data.items():
        if v.dtype.kind == "U" and v.ndim == 0:
            data[k] = str(v)
    if "metadata" in data:
        data["metadata"] = json.loads(data["metadata"])
    return data
