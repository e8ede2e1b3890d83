"""Rigs in OpenCV FileStorage files (YAML, XML or JSON by extension): EasyMocap's pair and a single-file layout.

EasyMocap (``intri.yml`` + ``extri.yml`` in one folder, metres, world z up): ``names`` (list), ``K_<name>``
(3x3), ``dist_<name>`` (1x5), optionally ``H_<name>``, ``W_<name>`` (image size, which we always write);
``R_<name>`` (3x1 Rodrigues), ``Rot_<name>`` (3x3), ``T_<name>`` (3x1), world to camera.

Single file (``--to opencv``), one map per camera, OpenCV's calibration-sample key names::

    cameras: [cam01, cam02]
    cam01: {image_width, image_height, camera_matrix, distortion_coefficients, rotation_matrix, translation_vector}

World to camera, metres, our world frame (y up). A file with only the sample's top-level ``camera_matrix``,
``distortion_coefficients``, ``image_width``, ``image_height`` reads as one camera at the origin.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.cameras import Camera, CameraRig
from mocap.errors import CalibrationError, InputDataError
from mocap.io.atomic import atomic_path


class _Reader:
    def __init__(self, path: Path):
        import cv2

        if not path.is_file():
            raise CalibrationError(f"{path}: file not found")
        try:
            self.fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
            ok = self.fs.isOpened()
        except cv2.error:
            ok = False
        if not ok:
            raise CalibrationError(f"{path}: not an OpenCV FileStorage file (YAML/XML/JSON)")
        self.path = path

    def node(self, key: str, parent=None):
        n = (parent or self.fs).getNode(key)
        return None if n.empty() else n

    def mat(self, key: str, shape: tuple[int, ...], parent=None, required: bool = True) -> np.ndarray | None:
        n = self.node(key, parent)
        m = None if n is None else n.mat()
        if m is None:
            if required:
                raise CalibrationError(f"{self.path}: lacks the matrix {key!r}")
            return None
        if -1 not in shape and m.size != int(np.prod(shape)):
            raise CalibrationError(f"{self.path}: {key!r} has {m.size} values, expected {int(np.prod(shape))}")
        return m.astype(np.float64).reshape(shape)

    def number(self, key: str, parent=None) -> float | None:
        n = self.node(key, parent)
        return None if n is None else n.real()

    def strings(self, key: str) -> list[str]:
        n = self.node(key)
        if n is None:
            raise CalibrationError(f"{self.path}: lacks the list {key!r}")
        return [n.at(i).string() or str(int(n.at(i).real())) for i in range(n.size())]


def _writer(path: Path):
    import cv2

    return cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)


def _write_list(fs, key: str, items: list[str]) -> None:
    import cv2

    fs.startWriteStruct(key, cv2.FileNode_SEQ)
    for item in items:
        fs.write("", item)
    fs.endWriteStruct()


def _size(w: float | None, h: float | None, fallback: tuple[int, int] | None, path: Path, name: str) -> tuple[int, int]:
    if w is not None and h is not None:
        return int(w), int(h)
    if fallback is None:
        raise InputDataError(f"{path}: camera {name} has no image size; pass it (e.g. --size 1920x1080)")
    return fallback


def read_easymocap(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> CameraRig:
    """``intri.yml`` and ``extri.yml`` from their folder (``path`` is either file or the folder); world as in
    the files."""
    from scipy.spatial.transform import Rotation

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    intri, extri = _Reader(folder / "intri.yml"), _Reader(folder / "extri.yml")
    cameras = []
    for name in intri.strings("names"):
        K = intri.mat(f"K_{name}", (3, 3))
        dist = intri.mat(f"dist_{name}", (-1,))
        size = _size(intri.number(f"W_{name}"), intri.number(f"H_{name}"), image_size, intri.path, name)
        Rot = extri.mat(f"Rot_{name}", (3, 3), required=False)
        R = Rot if Rot is not None else Rotation.from_rotvec(extri.mat(f"R_{name}", (3,))).as_matrix()
        try:
            cameras.append(Camera(name, K, dist[:5], R, extri.mat(f"T_{name}", (3,)), size))
        except InputDataError as e:
            raise CalibrationError(f"{folder}: {e}") from None
    return CameraRig(tuple(cameras))


def write_easymocap(rig: CameraRig, folder: str | os.PathLike) -> list[Path]:
    """Write ``folder/intri.yml`` and ``folder/extri.yml``; the rig's world frame is kept."""
    from scipy.spatial.transform import Rotation

    folder = Path(folder)
    out = []
    for fname in ("intri.yml", "extri.yml"):
        with atomic_path(folder / fname) as tmp:
            fs = _writer(tmp)
            _write_list(fs, "names", rig.names)
            for cam in rig:
                if fname == "intri.yml":
                    fs.write(f"K_{cam.name}", cam.K)
                    fs.write(f"dist_{cam.name}", cam.dist.reshape(1, 5))
                    fs.write(f"H_{cam.name}", int(cam.image_size[1]))
                    fs.write(f"W_{cam.name}", int(cam.image_size[0]))
                else:
                    fs.write(f"R_{cam.name}", Rotation.from_matrix(cam.R).as_rotvec().reshape(3, 1))
                    fs.write(f"Rot_{cam.name}", cam.R)
                    fs.write(f"T_{cam.name}", cam.t.reshape(3, 1))
            fs.release()
        out.append(folder / fname)
    return out


def read_opencv(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> CameraRig:
    path = Path(path)
    r = _Reader(path)
    if r.node("cameras") is None:  # OpenCV calibration sample: one camera, intrinsics only
        size = _size(r.number("image_width"), r.number("image_height"), image_size, path, path.stem)
        return CameraRig((Camera(path.stem.split(".")[0], r.mat("camera_matrix", (3, 3)),
                                 r.mat("distortion_coefficients", (-1,))[:5], np.eye(3), np.zeros(3), size),))
    cameras = []
    for name in r.strings("cameras"):
        node = r.node(name)
        if node is None:
            raise CalibrationError(f"{path}: camera {name!r} is listed but has no map")
        size = _size(r.number("image_width", node), r.number("image_height", node), image_size, path, name)
        try:
            cameras.append(Camera(name, r.mat("camera_matrix", (3, 3), node),
                                  r.mat("distortion_coefficients", (-1,), node)[:5],
                                  r.mat("rotation_matrix", (3, 3), node), r.mat("translation_vector", (3,), node), size))
        except InputDataError as e:
            raise CalibrationError(f"{path}: {e}") from None
    return CameraRig(tuple(cameras))


def write_opencv(rig: CameraRig, path: str | os.PathLike) -> Path:
    path = Path(path)
    bad = [n for n in rig.names if not (n[:1].isalpha() or n[:1] == "_") or not n.replace("_", "").isalnum()]
    if bad:
        raise InputDataError(f"{path}: OpenCV FileStorage keys must be identifiers; rename cameras {', '.join(bad)}")
    with atomic_path(path) as tmp:
        fs = _writer(tmp)
        _write_list(fs, "cameras", rig.names)
        for cam in rig:
            import cv2

            fs.startWriteStruct(cam.name, cv2.FileNode_MAP)
            fs.write("image_width", int(cam.image_size[0]))
            fs.write("image_height", int(cam.image_size[1]))
            fs.write("camera_matrix", cam.K)
            fs.write("distortion_coefficients", cam.dist.reshape(1, 5))
            fs.write("rotation_matrix", cam.R)
            fs.write("translation_vector", cam.t.reshape(3, 1))
            fs.endWriteStruct()
        fs.release()
    return path
