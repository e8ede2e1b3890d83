"""A tiny complete session for the viewers and the report: cameras on a ring looking at the bundled body,
plain footage, keypoints projected from the body (plus a known offset), and the body as the fitted result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mocap.cameras import Camera, CameraRig
from mocap.cameras import look_at as cameras_look_at


def look_at(name: str, centre, target=(0.0, 0.0, 0.0), size=(320, 240), f=300.0, dist=None) -> Camera:
    R, t = cameras_look_at(centre, target)
    K = np.array([[f, 0, (size[0] - 1) / 2], [0, f, (size[1] - 1) / 2], [0, 0, 1]])
    return Camera(name, K, np.zeros(5) if dist is None else dist, R, t, size)


def ring_rig(n: int = 2, radius: float = 3.5, size=(320, 240)) -> CameraRig:
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        cams.append(look_at(f"cam{i}", (radius * np.sin(a), 0.3, radius * np.cos(a)), (0, -0.2, 0), size))
    return CameraRig(tuple(cams))


def motion(frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Poses (F, 24, 3) and translations (F, 3): arms swinging, a small walk along x."""
    poses = np.zeros((frames, 24, 3))
    t = np.arange(frames) / 30.0
    poses[:, 16, 2] = -1.2 + 0.3 * np.sin(2 * t)  # left shoulder down from T-pose
    poses[:, 17, 2] = 1.2 - 0.3 * np.sin(2 * t)
    poses[:, 18, 1] = 0.5 * (1 + np.sin(3 * t))  # left elbow bending
    poses[:, 0, 1] = 0.2 * np.sin(t)
    trans = np.stack([0.1 * t, np.zeros(frames), np.zeros(frames)], 1)
    return poses + rng.normal(0, 0.01, poses.shape), trans


def make_session(root: Path, cameras: int = 2, frames: int = 6, seed: int = 0, keypoint_offset=(3.0, -2.0),
                 gt: bool = False) -> dict:
    """Write the session under ``root``; returns what it wrote (rig, body, poses, trans, keypoints)."""
    import cv2
    import torch

    from mocap.body.keypoints import body_keypoints, keypoint_spec
    from mocap.body.model import load_body
    from mocap.io.calibration_toml import save_rig
    from mocap.io.keypoints_h5 import Keypoints2D, write_keypoints

    rng = np.random.default_rng(seed)
    rig = ring_rig(cameras)
    body = load_body("open")
    poses, trans = motion(frames, rng)
    betas = np.zeros(10)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    w, h = rig[0].image_size
    for cam in rig:
        vw = cv2.VideoWriter(str(root / "videos" / f"{cam.name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
        for f in range(frames):
            img = np.full((h, w, 3), 40 + 10 * f, np.uint8)
            vw.write(img)
        vw.release()
    cal = {c.name: {"frames": 30, "mean_px": 0.3 + 0.1 * i, "p95_px": 0.8 + 0.1 * i, "verdict": "good"} for i, c in enumerate(rig)}
    save_rig(rig, root / "calibration.toml", {"error": 0.42, "cameras": cal})
    spec = keypoint_spec(body, "blazepose33")
    p = torch.as_tensor(poses, dtype=torch.float32)
    with torch.no_grad():
        X = body_keypoints(body, spec, p[:, 0], p[:, 1:], torch.zeros(frames, 10), torch.as_tensor(trans, dtype=torch.float32)).double().numpy()
    uv = np.stack([cam.project(X.reshape(-1, 3)).reshape(frames, -1, 2) for cam in rig], 1)  # (F, V, K, 2)
    uv = uv + np.asarray(keypoint_offset)
    conf = np.full(uv.shape[:-1] + (1,), 0.9)
    kp = np.concatenate([uv, conf], -1)
    detected = np.ones((frames, cameras), bool)
    detected[0, -1] = False  # one missed detection: rates are known
    kp[0, -1] = np.nan
    boxes = np.concatenate([kp[..., :2].min(2), kp[..., :2].max(2)], -1)  # NaN where not detected
    k2d = Keypoints2D(tuple(rig.names), kp, boxes, detected, np.array([c.image_size for c in rig]), "blazepose33",
                      spec.names, 30.0, {"detector": "synthetic"})
    (root / "output").mkdir(exist_ok=True)
    write_keypoints(root / "output" / "keypoints2d.h5", k2d)
    err = np.full((frames, cameras), float(np.hypot(*keypoint_offset)), np.float32)
    meta = {"versions": {"mocap": "test", "torch": torch.__version__}, "pipeline": {"fit": {"iterations": 10}},
            "body_model": body.name, "timings_s": {"fit": 2.0}}
    np.savez(root / "output" / "smpl.npz", poses=poses.reshape(frames, 72), trans=trans, betas=betas,
             gender=np.array("neutral"), mocap_framerate=np.array(30.0), surface_model=np.array(body.name),
             reprojection_error_px=err, views_used=np.ones((frames, cameras), bool), flags=np.zeros(frames, np.int64),
             flag_names=np.array(json.dumps({"interpolated": 1})), camera_names=np.array(rig.names),
             metadata=np.array(json.dumps(meta)))
    if gt:
        gt_poses = poses.copy()
        gt_poses[:, 18, 1] += 0.2  # the truth bends the elbow more: per-joint errors are known to be non-zero there
        np.savez(root / "ground_truth.npz", poses=gt_poses.reshape(frames, 72), trans=trans, betas=betas,
                 gender=np.array("neutral"), mocap_framerate=np.array(30.0), surface_model=np.array(body.name))
    return {"rig": rig, "body": body, "poses": poses, "trans": trans, "keypoints": kp, "points3d": X}
