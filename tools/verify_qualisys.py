"""Check the Qualisys import conventions by reprojection: BlazePose on a few frames of every view, triangulated
with the imported cameras; the right conventions give the lowest cross-view reprojection error.

    PYTHONPATH=. python tools/verify_qualisys.py ../shared/data/pose2sim_demo_single [--frames 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mocap.calib.qualisys import read_qca
from mocap.cameras import Camera, CameraRig
from mocap.io.video import probe, read_frames


def blazepose(video: Path, frames: list[int]) -> np.ndarray:
    """(F, 33, 3) pixels and visibility of BlazePose landmarks."""
    import cv2
    import mediapipe as mp

    out = np.full((len(frames), 33, 3), np.nan)
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for k, (i, img) in enumerate((i, f) for i, f in enumerate(read_frames(video)) if i in frames):
            res = pose.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            if res.pose_landmarks:
                h, w = img.shape[:2]
                out[k] = [(p.x * w, p.y * h, p.visibility) for p in res.pose_landmarks.landmark]
    return out


def reprojection_error(rig: CameraRig, uv: np.ndarray, min_vis: float = 0.8) -> float:
    """Median pixel error of DLT-triangulated landmarks reprojected into the views: ``uv`` (V, F, J, 3)."""
    import cv2

    V, F, J, _ = uv.shape
    errors = []
    for f in range(F):
        for j in range(J):
            ok = uv[:, f, j, 2] > min_vis
            if ok.sum() < 3:
                continue
            A = []
            for v in np.flatnonzero(ok):
                cam = rig[v]
                xy = cv2.undistortPoints(uv[v, f, j, :2].reshape(1, 1, 2), cam.K, cam.dist).ravel()
                P = np.concatenate([cam.R, cam.t[:, None]], 1)
                A += [xy[0] * P[2] - P[0], xy[1] * P[2] - P[1]]
            X = np.linalg.svd(np.array(A))[2][-1]
            X = X[:3] / X[3]
            for v in np.flatnonzero(ok):
                errors.append(np.linalg.norm(rig[v].project(X[None])[0] - uv[v, f, j, :2]))
    return float(np.median(errors))


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
    frames = list(np.linspace(0, probe(videos[rig.names[0]]).frames - 1, a.frames).round().astype(int))
    uv = np.stack([blazepose(videos[n], frames) for n in rig.names])
    for name, r in variants(rig, widths).items():
        print(f"{reprojection_error(r, uv):7.2f} px  {name}")


if __name__ == "__main__":
    main()
