"""Write a whole synthetic session folder whose truth is known.

Layout written under ``out``::

    calibration.toml        the true rig (anipose TOML)
    session.yaml            fps, body model, the calibration board
    ground_truth.npz        AMASS-style truth in the world frame (y up): poses (F, 72), trans (F, 3), betas (10,),
                            gender, mocap_framerate, surface_model; plus joints (F, 24, 3), keypoints3d (F, K, 3),
                            keypoint_names, and which 2D keypoints were made outliers / occluded (F, V, K)
    output/keypoints2d.h5   the synthetic detections, in `mocap detect`'s format, so `mocap run` uses them as is
    videos/<camera>.mp4     with ``render``: the shaded body seen by each camera
    calibration/<camera>.mp4, calibration/board_poses.npz
                            with ``render``: ChArUco board footage and the board's true poses

Randomness comes from one seed split into independent streams (rig, motion, detections, rendering), so
changing e.g. the noise level leaves the rig and the motion unchanged.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mocap.errors import ConfigError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SynthConfig:
    cameras: int = 4
    """Number of cameras on the ring, 2-12."""
    frames: int = 120
    fps: float = 60.0
    motion: str = "walk"
    """walk, squat, jumping_jacks, arm_raise, turn or mixed."""
    noise: float = 3.0
    """Gaussian pixel noise of the keypoints, px."""
    outliers: float = 0.05
    occlusion: float = 0.1
    seed: int = 0
    body: str = "open"
    """Body model spec for `mocap.body.model.load_body`."""
    render: bool = False
    """Also render videos of the body and ChArUco calibration footage."""
    board_frames: int = 120
    """Frames of board footage per camera (with render)."""
    image_scale: float = 1.0
    """Sensor size relative to 1080p/4K (0.1-1): smaller images render faster."""


@dataclass(frozen=True)
class SynthResult:
    root: Path
    rig: "object"  # CameraRig
    motion: "object"  # mocap.synth.motion.Motion
    files: tuple[Path, ...]


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = ("rig", "motion", "detections", "render")
    return dict(zip(names, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(names)))))


def _versions() -> dict:
    import cv2
    import torch

    from mocap import __version__

    return {"mocap": __version__, "numpy": np.__version__, "torch": torch.__version__, "opencv": cv2.__version__}


def synthesize(out: str | os.PathLike, config: SynthConfig = SynthConfig(), body=None,
               progress: Progress | None = None) -> SynthResult:
    """Generate and write a session under ``out`` (created; must not already hold files).

    ``body``: a loaded `BodyModel` to use instead of loading ``config.body``.
    """
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(f"{root}: already exists and is not an empty folder; choose a new output folder")
    import torch

    from mocap.body.keypoints import body_keypoints, keypoint_spec
    from mocap.body.model import load_body
    from mocap.io.keypoints_h5 import Keypoints2D, write_keypoints
    from mocap.synth.keypoints import Corruption, boxes_from_keypoints, corrupt
    from mocap.synth.motion import generate_motion
    from mocap.synth.rig import ring_rig

    corruption = Corruption(config.noise, config.outliers, config.occlusion)
    if config.fps <= 0:
        raise ConfigError(f"--fps {config.fps}: must be positive")
    rng = _streams(config.seed)
    rig = ring_rig(config.cameras, rng["rig"], scale=config.image_scale)
    body = load_body(config.body) if body is None else body
    motion = generate_motion(config.motion, config.frames, config.fps, body, rng["motion"])
    spec = keypoint_spec(body, "blazepose33")
    with torch.no_grad():
        args = [torch.as_tensor(a, dtype=body.dtype) for a in
                (motion.global_orient, motion.body_pose, motion.betas[None], motion.transl)]
        kp3d = body_keypoints(body, spec, *args).double().numpy()
        joints = body.points(*args)[0].double().numpy()
    det = corrupt(rig, kp3d, tuple(spec.names), corruption, rng["detections"])
    boxes, detected = boxes_from_keypoints(det.clean)

    meta = {"generator": "mocap synth", "synthetic": True, "config": asdict(config), "body": body.name,
            "versions": _versions()}
    root.mkdir(parents=True, exist_ok=True)
    files = []
    files.append(_save_rig(rig, root / "calibration.toml", meta))
    kp = Keypoints2D(tuple(rig.names), det.keypoints, boxes, detected & np.isfinite(det.keypoints[..., 0]).any(-1),
                     rig.image_sizes, "blazepose33", tuple(spec.names), config.fps, meta)
    files.append(write_keypoints(root / "output" / "keypoints2d.h5", kp))
    files.append(_save_truth(root / "ground_truth.npz", motion, body, joints, kp3d, spec.names, det, config))
    files.append(_save_session_yaml(root / "session.yaml", config, body))
    if config.render:
        from mocap.synth.footage import render_board_footage, render_videos

        files += render_videos(root / "videos", rig, motion, body, rng["render"], progress)
        files += render_board_footage(root / "calibration", rig, config.board_frames, config.fps, rng["render"], progress)
    return SynthResult(root, rig, motion, tuple(files))


def _save_rig(rig, path: Path, meta: dict) -> Path:
    from mocap.io.calibration_toml import save_rig

    save_rig(rig, path, {"generator": meta["generator"], "seed": meta["config"]["seed"]})
    return path


def _save_truth(path: Path, motion, body, joints, kp3d, names, det, config: SynthConfig) -> Path:
    from mocap.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        np.savez_compressed(
            tmp, poses=motion.poses, trans=motion.transl, betas=motion.betas, gender=np.str_(body.gender),
            mocap_framerate=np.float64(motion.fps), surface_model=np.str_(body.name),
            joints=joints, keypoints3d=kp3d, keypoint_names=np.array(names), keypoint_format=np.str_("blazepose33"),
            keypoint_outlier=det.outlier, keypoint_occluded=det.occluded, motion=np.str_(config.motion),
            seed=np.int64(config.seed))
    return path


def _save_session_yaml(path: Path, config: SynthConfig, body) -> Path:
    import yaml

    from mocap.io.atomic import write_text
    from mocap.synth.board import SYNTH_BOARD

    doc = {"fps": float(config.fps), "body": config.body, "gender": body.gender}
    if config.render:
        doc["board"] = asdict(SYNTH_BOARD)
    write_text(path, "# written by mocap synth\n" + yaml.safe_dump(doc, sort_keys=False))
    return path
