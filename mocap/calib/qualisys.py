"""Qualisys Track Manager calibrations (``.qca.txt``, XML) to a rig in our conventions.

What the file holds, per ``<camera>`` (conventions checked by reprojection, see tests/test_calib_formats.py
and the calibration notes in the report of `mocap calibrate import`):

- ``transform``: the camera centre ``x, y, z`` in millimetres in the lab frame (z up), and a rotation matrix
  ``r11..r33`` whose rows are the camera's axes in the lab frame (lab to camera). Qualisys cameras look along
  their -z axis with y up in the image, so OpenCV's camera frame is that one turned 180 degrees about x.
- ``intrinsic``: focal lengths and principal point in sensor sub-pixels, 1/64 of a pixel at binning 1;
  ``radialDistortion1..3`` and ``tangentalDistortion1..2`` are OpenCV's k1, k2, k3, p1, p2 (dimensionless).
- ``fov_video``: the recorded window in sensor pixels, inclusive bounds: image size and principal-point offset.

The lab frame becomes ours (y up) by ``x, y, z -> x, z, -y``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mocap.cameras import Camera, CameraRig
from mocap.errors import CalibrationError

#: Qualisys lab frame (z up) -> our world frame (y up)
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
#: Qualisys camera frame (looks along -z, y up in the image) -> OpenCV camera frame
QUALISYS_TO_OPENCV_CAMERA = np.diag([1.0, -1.0, -1.0])
SUBPIXELS = 64


def _floats(el: ET.Element, keys: tuple[str, ...], path: Path, cam: str) -> list[float]:
    try:
        return [float(el.attrib[k]) for k in keys]
    except KeyError as e:
        raise CalibrationError(f"{path}: camera {cam}: <{el.tag}> lacks attribute {e.args[0]}") from None
    except ValueError as e:
        raise CalibrationError(f"{path}: camera {cam}: <{el.tag}> has a non-numeric value ({e})") from None


def read_qca(path: str | os.PathLike, binning: int = 1) -> CameraRig:
    """Active cameras of a ``.qca.txt`` file as a rig in metres, y up; ``binning``: the video's pixel binning."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise CalibrationError(f"{path}: file not found") from None
    except ET.ParseError as e:
        raise CalibrationError(f"{path}: not a Qualisys .qca.txt calibration (XML error: {e})") from None
    cams = root.findall("cameras/camera")
    if not cams:
        raise CalibrationError(f"{path}: no <cameras><camera> entries; is this a Qualisys calibration?")
    cameras = []
    for i, el in enumerate(cams):
        name = el.attrib.get("serial") or f"cam{i + 1}"
        if el.attrib.get("active", "1") == "0":
            continue
        parts = {tag: el.find(tag) for tag in ("transform", "intrinsic", "fov_video")}
        for tag, node in parts.items():
            if node is None:
                raise CalibrationError(f"{path}: camera {name} lacks <{tag}>")
        left, top, right, bottom = _floats(parts["fov_video"], ("left", "top", "right", "bottom"), path, name)
        fu, fv, cu, cv = _floats(parts["intrinsic"], ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV"),
                                 path, name)
        k1, k2, k3, p1, p2 = _floats(parts["intrinsic"], ("radialDistortion1", "radialDistortion2", "radialDistortion3",
                                                          "tangentalDistortion1", "tangentalDistortion2"), path, name)
        scale = SUBPIXELS * binning
        size = (round((right - left + 1) / binning), round((bottom - top + 1) / binning))
        K = np.array([[fu / scale, 0.0, cu / scale - left / binning], [0.0, fv / scale, cv / scale - top / binning],
                      [0.0, 0.0, 1.0]])
        tr = parts["transform"]
        M = np.array(_floats(tr, tuple(f"r{a}{b}" for a in "123" for b in "123"), path, name)).reshape(3, 3)
        centre = np.array(_floats(tr, ("x", "y", "z"), path, name)) / 1000.0
        R = QUALISYS_TO_OPENCV_CAMERA @ M @ Z_UP_TO_Y_UP.T
        try:
            cameras.append(Camera(name, K, [k1, k2, p1, p2, k3], R, -R @ (Z_UP_TO_Y_UP @ centre), size))
        except Exception as e:  # InputDataError from Camera's checks, e.g. a non-orthonormal matrix
            raise CalibrationError(f"{path}: camera {name}: {e}") from None
    if not cameras:
        raise CalibrationError(f"{path}: every camera is inactive")
    return CameraRig(tuple(cameras))
