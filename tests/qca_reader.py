"""A minimal reader of Qualisys ``.qca.txt`` calibrations, for the real-footage test and benchmark only.

`mocap calibrate import` (mocap.calib) is the project's reader; this stays private until it lands.
Convention, checked by reprojection on the pose2sim demo (see benchmarks/detection.py): intrinsics in
sensor units of 1/64 pixel; ``transform`` = camera position (mm) and rotation camera -> world with the
camera looking along its -z axis and image y down along -y, hence the flip diag(1, -1, -1).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mocap.cameras import Camera, CameraRig

FLIP = np.diag([1.0, -1.0, -1.0])


def read_qca(path: Path, flip: bool = True, transpose: bool = False) -> CameraRig:
    cams = []
    for cam in ET.parse(path).getroot().iter("camera"):
        fov = cam.find("fov_video").attrib
        w = int(fov["right"]) - int(fov["left"]) + 1
        h = int(fov["bottom"]) - int(fov["top"]) + 1
        i = {k: float(v) for k, v in cam.find("intrinsic").attrib.items()}
        K = [[i["focalLengthU"] / 64, 0, i["centerPointU"] / 64 - int(fov["left"])],
             [0, i["focalLengthV"] / 64, i["centerPointV"] / 64 - int(fov["top"])], [0, 0, 1]]
        dist = [i["radialDistortion1"], i["radialDistortion2"], i["tangentalDistortion1"], i["tangentalDistortion2"],
                i["radialDistortion3"]]
        tr = {k: float(v) for k, v in cam.find("transform").attrib.items()}
        Rq = np.array([[tr[f"r{a}{b}"] for b in (1, 2, 3)] for a in (1, 2, 3)])
        C = np.array([tr["x"], tr["y"], tr["z"]]) / 1000.0
        R = Rq.T if transpose else Rq
        if flip:
            R = FLIP @ R
        cams.append(Camera(cam.attrib["serial"], K, dist, R, -R @ C, (w, h)))
    return CameraRig(tuple(cams))
