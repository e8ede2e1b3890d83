"""Export a body model as an SMPL-style pickle, for tools that only read SMPL ``.pkl`` files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from mocap.body.arrays import OPEN_BODY_FILE, SMPL_KEYS, load_arrays
from mocap.errors import InputDataError, MissingDependencyError
from mocap.io.atomic import atomic_path


def smpl_arrays(spec: str | os.PathLike = "open") -> dict[str, np.ndarray]:
    """SMPL's pickle keys as plain numpy arrays, plus ``J`` (the rest joints) and SMPL's blend-skinning tags."""
    if str(spec) in ("open", "open_body_neutral"):
        if not OPEN_BODY_FILE.is_file():
            raise MissingDependencyError(f"{OPEN_BODY_FILE}: bundled body asset missing; rebuild it with `python tools/build_open_body.py`")
        path = OPEN_BODY_FILE
    else:
        path = Path(spec).expanduser()
    data = load_arrays(path)
    missing = [k for k in SMPL_KEYS if k not in data]
    if missing:
        raise InputDataError(f"{path}: not an SMPL-format body (lacks {', '.join(missing)})")
    out = {k: np.asarray(data[k]) for k in SMPL_KEYS}
    out["J_regressor"] = out["J_regressor"].astype(np.float64)
    out["J"] = out["J_regressor"] @ out["v_template"]
    out["bs_style"], out["bs_type"] = "lbs", "lrotmin"
    return out


def export_smpl_pickle(out_dir: str | os.PathLike, spec: str | os.PathLike = "open", gender: str = "neutral") -> Path:
    """Write ``SMPL_{GENDER}.pkl`` (plain numpy arrays, pickle protocol 2) into ``out_dir``; returns its path."""
    path = Path(out_dir) / f"SMPL_{gender.upper()}.pkl"
    arrays = smpl_arrays(spec)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(arrays, f, protocol=2)
    return path
