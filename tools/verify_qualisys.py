"""Check the Qualisys import conventions by reprojection: BlazePose on the first frames of every view
(`mocap.detect`), triangulated with the imported cameras; the right conventions give the lowest cross-view
reprojection error.

    PYTHONPATH=. python tools/verify_qualisys.py ../shared/data/pose2sim_demo_single [--frames 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mocap.calib.qualisys import read_qca
from mocap.cameras import Camera, CameraRig
from mocap.detect.blazepose import DetectorConfig
from mocap.detect.consistency import reprojection_errors
from mocap.detect.parallel import detect_views
from mocap.io.video import probe


def median_error(rig: CameraRig, keypoints: np.ndarray, min_confidence: float = 0.8) -> float:
    """Median pixel error of keypoints ``(F, V, J, 3)`` triangulated from the confident views and reprojected."""
    return float(np.nanmedian(reprojection_errors(keypoints, rig, min_confidence)))


def variants(rig: CameraRig, widths: dict[str, int]) -> dict[str, CameraRig]:
    """The imported rig and plausible alternatives: other readings of the rotation, of the 1080-pixel videos."""

    def remap(fn):
        return CameraRig(tuple(fn(c) for c in rig))

    def with_K(c, K, size=None):
        return Camera(c.name, K, c.dist, c.R, c.t, size or c.image_size)

    def narrow(c, how):
        w = widths[c.name]
        if w == c.image_size[0]:
            return c
        K = c.K.copy()
        if how == "scaled":
            K[0] *= w / c.image_size[0]
        elif how == "centre-cropped":
            K[0, 2] -= (c.image_size[0] - w) / 2
        return with_K(c, K, (w, c.image_size[1]))

    def transposed(c):  # rotation read by columns: the other reading of r11..r33
        M = np.diag([1.0, -1.0, -1.0]) @ c.R
        R = np.diag([1.0, -1.0, -1.0]) @ M.T
        return Camera(c.name, c.K, c.dist, R, -R @ c.center, c.image_size)

    return {
        "as imported (1080-wide videos cropped on the right)": rig,
        "1080-wide videos centre-cropped": remap(lambda c: narrow(c, "centre-cropped")),
        "1080-wide videos scaled from 1088": remap(lambda c: narrow(c, "scaled")),
        "no distortion": remap(lambda c: Camera(c.name, c.K, np.zeros(5), c.R, c.t, c.image_size)),
        "tangential p1/p2 swapped": remap(lambda c: Camera(c.name, c.K, c.dist[[0, 1, 3, 2, 4]], c.R, c.t, c.image_size)),
        "rotation read by columns": remap(transposed),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--frames", type=int, default=10)
    a = ap.parse_args()
    rig = read_qca(a.data / "calibration" / "Calib.qca.txt")
    videos = {c.name: a.data / "videos" / f"{c.name}.mp4" for c in rig}
    widths = {n: probe(p).width for n, p in videos.items()}
    views = detect_views(videos, DetectorConfig(), stop=a.frames)
    keypoints = np.concatenate([views[n].keypoints for n in rig.names], 1)  # (F, V, J, 3)
    for name, r in variants(rig, widths).items():
        print(f"{median_error(r, keypoints):7.2f} px  {name}")


if __name__ == "__main__":
    main()
