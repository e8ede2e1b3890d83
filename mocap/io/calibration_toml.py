"""Camera rigs in anipose's TOML format (read by anipose, aniposelib, Pose2Sim, FreeMoCap).

One ``[cam_N]`` table per camera: ``name``, ``size`` (width, height), ``matrix`` (K), ``distortions``
(OpenCV order), ``rotation`` (Rodrigues vector of R, world to camera), ``translation`` (t). Our files are in
metres, which Pose2Sim and FreeMoCap assume; ``[metadata]`` records that and whatever the writer adds.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path

import numpy as np

from mocap.cameras import Camera, CameraRig
from mocap.config import read_text_bounded
from mocap.errors import CalibrationError, ConfigError, InputDataError
from mocap.io.atomic import atomic_path

_CAMERA_KEYS = {"name", "size", "matrix", "distortions", "rotation", "translation"}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex digest of a file, stored in results so a run names the calibration it used."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_rig(path: str | os.PathLike) -> CameraRig:
    """Read an anipose TOML calibration; errors name the file and the camera table at fault."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: calibration file not found (run `mocap calibrate` or `mocap calibrate import`)")
    try:
        doc = tomllib.loads(read_text_bounded(path, "calibration file"))
    except ConfigError as e:
        raise CalibrationError(str(e)) from None
    except tomllib.TOMLDecodeError as e:
        raise CalibrationError(f"{path}: not valid TOML ({e})") from None
    tables = [(k, v) for k, v in doc.items() if k != "metadata" and isinstance(v, dict)]
    if not tables:
        raise CalibrationError(f"{path}: no camera tables ([cam_0], [cam_1], ...) found")
    cameras = []
    for key, d in tables:
        missing = _CAMERA_KEYS - d.keys()
        if missing:
            raise CalibrationError(f"{path}: [{key}] lacks {', '.join(sorted(missing))}")
        if d.get("fisheye", False):
            raise CalibrationError(f"{path}: [{key}] is a fisheye camera, which mocap does not support yet")
        try:
            # OpenCV's Rodrigues, not scipy's Rotation: importing scipy.spatial costs 0.4 s of CPU per command.
            R = cv2.Rodrigues(np.asarray(d["rotation"], dtype=float).reshape(3))[0]
            cameras.append(Camera(str(d["name"]), d["matrix"], d["distortions"], R, d["translation"], tuple(d["size"])))
        except (ValueError, TypeError) as e:
            raise CalibrationError(f"{path}: [{key}] has malformed values ({e})") from None
        except InputDataError as e:
            raise CalibrationError(f"{path}: [{key}]: {e}") from None
    return CameraRig(tuple(cameras))


def rig_to_toml(rig: CameraRig, metadata: dict | None = None) -> str:
    import toml
    from scipy.spatial.transform import Rotation

    doc = {}
    for i, cam in enumerate(rig):
        doc[f"cam_{i}"] = {
            "name": cam.name,
            "size": [int(s) for s in cam.image_size],
            "matrix": cam.K.tolist(),
            "distortions": cam.dist.tolist(),
            "rotation": Rotation.from_matrix(cam.R).as_rotvec().tolist(),
            "translation": cam.t.tolist(),
            "fisheye": False,
        }
    doc["metadata"] = {"units": "m", "adjusted": False, "error": 0.0, **(metadata or {})}
    return toml.dumps(doc)


def save_rig(rig: CameraRig, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``rig`` atomically to ``path`` in anipose's TOML format."""
    with atomic_path(path) as tmp:
        tmp.write_text(rig_to_toml(rig, metadata))
    return Path(path)
