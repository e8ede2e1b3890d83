"""Calibration import/export between our anipose TOML (metres, y up) and other tools' files.

Worlds: Qualisys labs are z up (converted always); EasyMocap's is z up by default; anipose and OpenCV files
have no fixed up axis and are taken as they are (``up="y"``) unless told otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.cameras import Camera, CameraRig
from mocap.errors import ConfigError

IMPORT_FORMATS = ("qualisys", "anipose", "easymocap", "opencv")
EXPORT_FORMATS = ("anipose", "easymocap", "opencv")
DEFAULT_UP = {"qualisys": "z", "anipose": "y", "easymocap": "z", "opencv": "y"}


def change_world(rig: CameraRig, Q: np.ndarray, s=np.zeros(3), scale: float = 1.0) -> CameraRig:
    """The rig in the world ``X_new = scale * (Q @ X_old) + s``."""
    cams = []
    for c in rig:
        R = c.R @ Q.T
        cams.append(Camera(c.name, c.K, c.dist, R, scale * c.t - R @ np.asarray(s, dtype=np.float64), c.image_size))
    return CameraRig(tuple(cams))


def _up_rotation(up: str) -> np.ndarray:
    from mocap.calib.qualisys import Z_UP_TO_Y_UP

    if up == "y":
        return np.eye(3)
    if up == "z":
        return Z_UP_TO_Y_UP
    raise ConfigError(f"up axis must be y or z, got {up!r}")


def import_rig(path: str | os.PathLike, fmt: str, image_size: tuple[int, int] | None = None, binning: int = 1,
               units: str = "m", up: str | None = None) -> CameraRig:
    """Read another tool's calibration as a rig in metres with y up."""
    from mocap.calib import opencv_yaml, qualisys
    from mocap.io.calibration_toml import load_rig

    if fmt not in IMPORT_FORMATS:
        raise ConfigError(f"unknown calibration format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}")
    if units not in ("m", "mm"):
        raise ConfigError(f"units must be m or mm, got {units!r}")
    if fmt == "qualisys":
        if up not in (None, "z"):
            raise ConfigError("Qualisys calibrations are z up; leave --up out")
        return qualisys.read_qca(path, binning)
    rig = {"anipose": lambda: load_rig(path),
           "easymocap": lambda: opencv_yaml.read_easymocap(path, image_size),
           "opencv": lambda: opencv_yaml.read_opencv(path, image_size)}[fmt]()
    return change_world(rig, _up_rotation(up or DEFAULT_UP[fmt]), scale=0.001 if units == "mm" else 1.0)


def export_rig(rig: CameraRig, path: str | os.PathLike, fmt: str, up: str | None = None,
               metadata: dict | None = None) -> list[Path]:
    """Write ``rig`` for another tool; EasyMocap's ``path`` is a folder (intri.yml, extri.yml)."""
    from mocap.calib import opencv_yaml
    from mocap.io.calibration_toml import save_rig

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown calibration format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    out = change_world(rig, _up_rotation(up or DEFAULT_UP[fmt]).T)
    if fmt == "anipose":
        return [save_rig(out, path, metadata)]
    if fmt == "easymocap":
        return opencv_yaml.write_easymocap(out, path)
    return [opencv_yaml.write_opencv(out, path)]
