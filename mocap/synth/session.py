"""Write a whole synthetic session folder whose truth is known.

Layout written under ``out``::

    calibration.toml        the true rig (anipose TOML)
    session.yaml            fps, body model, the calibration board
    ground_truth.npz        AMASS-style truth in the world frame (y up): poses (F, 72), trans (F, 3), betas (10,),
                            gender, mocap_framerate, surface_model; plus joints (F, 24, 3), keypoints3d (F, K, 3),
                            keypoint_names, and which 2D keypoints were made outliers / occluded (F, V, K);
                            with several people, person 0's, plus people (N) and detection_person (F, V, P): the
                            true person of each detection slot of keypoints2d.h5 (-1: empty)
    ground_truth/<k>.npz    with several people: the same arrays for each person k = 0..N-1, plus
                            keypoint_hidden (F, V, K): keypoints dropped because another person hid them
    output/keypoints2d.h5   the synthetic detections, in `mocap detect`'s format, so `mocap run` uses them as is
                            (several people: one slot per person and view, in random order per frame)
    videos/<camera>.mp4     with ``render``: the shaded body seen by each camera
    calibration/<camera>.mp4, calibration/board_poses.npz
                            with ``render``: ChArUco board footage and the board's true poses

Randomness comes from one seed split into independent streams (rig, motion, detections, rendering), so
changing e.g. the noise level leaves the rig and the motion unchanged.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from mocap.errors import ConfigError

Progress = Callable[[int, int], None]
MAX_PEOPLE = 4


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
    people: int = 1
    """People in the session (1-4), each with its own motion and shape; their paths cross (mocap.synth.people)."""


@dataclass(frozen=True)
class SynthResult:
    root: Path
    rig: "object"  # CameraRig
    motion: "object"  # mocap.synth.motion.Motion of person 0
    files: tuple[Path, ...]
    motions: tuple = ()  # every person's Motion


def _streams(seed: int, people: int = 1) -> dict[str, np.random.Generator]:
    # Spawned children depend on their index only: more people leave the first streams unchanged.
    names = ("rig", "motion", "detections", "render", "slots") + tuple(
        f"{kind}{k}" for k in range(1, people) for kind in ("motion", "detections"))
    return dict(zip(names, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(names)))))


def _versions() -> dict:
    import cv2
    import torch

    from mocap import __version__

    return {"mocap": __version__, "numpy": np.__version__, "torch": torch.__version__, "opencv": cv2.__version__}


def synthesize(out: str | os.PathLike, config: SynthConfig = SynthConfig(), body=None,
               progress: Progress | None = None, alone: int | None = None) -> SynthResult:
    """Generate and write a session under ``out`` (created; must not already hold files).

    ``body``: a loaded `BodyModel` to use instead of loading ``config.body``. ``alone``: of the
    ``config.people``, write only this person's detections (and footage), not hidden by the others: the same
    person captured alone, to compare a fit among several people with (benchmarks/people.py).
    """
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(f"{root}: already exists and is not an empty folder; choose a new output folder")
    from mocap.body.keypoints import keypoint_spec
    from mocap.body.model import load_body
    from mocap.io.keypoints_h5 import write_keypoints
    from mocap.synth.keypoints import Corruption
    from mocap.synth.rig import ring_rig

    corruption = Corruption(config.noise, config.outliers, config.occlusion)
    if config.fps <= 0:
        raise ConfigError(f"--fps {config.fps}: must be positive")
    if not 1 <= config.people <= MAX_PEOPLE:
        raise ConfigError(f"--people {config.people}: choose 1 to {MAX_PEOPLE}")
    if alone is not None and not 0 <= alone < config.people:
        raise ConfigError(f"alone={alone}: no such person among {config.people}")
    rng = _streams(config.seed, config.people)
    rig = ring_rig(config.cameras, rng["rig"], scale=config.image_scale)
    body = load_body(config.body) if body is None else body
    spec = keypoint_spec(body, "blazepose33")
    people = [_person(k, config, body, spec, rig, rng, corruption) for k in range(config.people)]
    hidden = _hide(rig, people) if config.people > 1 and alone is None else np.zeros(
        (config.people, config.frames, len(rig), len(spec.names)), bool)

    meta = {"generator": "mocap synth", "synthetic": True, "config": asdict(config), "body": body.name,
            "versions": _versions(), **({"alone": alone} if alone is not None else {})}
    root.mkdir(parents=True, exist_ok=True)
    files = [_save_rig(rig, root / "calibration.toml", meta)]
    kp, slot_person = _detections(rig, people, hidden, spec, config, meta, rng["slots"], alone)
    files.append(write_keypoints(root / "output" / "keypoints2d.h5", kp))
    extra = {} if config.people == 1 else {"people": np.int64(config.people), "detection_person": slot_person}
    files.append(_save_truth(root / "ground_truth.npz", people[0], body, spec.names, config, hidden[0], extra))
    if config.people > 1:
        files += [_save_truth(root / "ground_truth" / f"{k}.npz", person, body, spec.names, config, hidden[k], {})
                  for k, person in enumerate(people)]
    files.append(_save_session_yaml(root / "session.yaml", config, body))
    if config.render:
        from mocap.synth.footage import render_board_footage, render_videos

        shown = [p.motion for k, p in enumerate(people) if alone is None or k == alone]
        files += render_videos(root / "videos", rig, shown, body, rng["render"], progress)
        files += render_board_footage(root / "calibration", rig, config.board_frames, config.fps, rng["render"], progress)
    return SynthResult(root, rig, people[0].motion, tuple(files), tuple(p.motion for p in people))


@dataclass(frozen=True)
class _Person:
    motion: object  # Motion
    joints: np.ndarray  # (F, 24, 3)
    kp3d: np.ndarray  # (F, K, 3)
    det: object  # SyntheticDetections


def _person(k: int, config: SynthConfig, body, spec, rig, rng, corruption) -> _Person:
    """Person ``k``'s motion (its own shape; its path shifted by `people.offsets`), keypoints and detections."""
    import torch

    from mocap.body.keypoints import body_keypoints
    from mocap.body.model import in_chunks
    from mocap.synth.keypoints import corrupt
    from mocap.synth.motion import generate_motion
    from mocap.synth.people import RADIUS, offsets

    suffix = str(k) if k else ""
    radius = {"radius": RADIUS} if config.people > 1 else {}
    motion = generate_motion(config.motion, config.frames, config.fps, body, rng[f"motion{suffix}"], **radius)
    if config.people > 1:
        motion = replace(motion, transl=motion.transl + offsets(config.people)[k])
    args = [torch.as_tensor(a, dtype=body.dtype) for a in
            (motion.global_orient, motion.body_pose, motion.betas[None], motion.transl)]
    F = config.frames
    kp3d = in_chunks(lambda *a: body_keypoints(body, spec, *a), F, *args).double().numpy()
    joints = in_chunks(lambda *a: body.points(*a)[0], F, *args).double().numpy()
    return _Person(motion, joints, kp3d, corrupt(rig, kp3d, tuple(spec.names), corruption, rng[f"detections{suffix}"]))


def _hide(rig, people: list[_Person]) -> np.ndarray:
    from mocap.synth.people import hidden_by_others

    return hidden_by_others(rig, np.stack([p.kp3d for p in people]), np.stack([p.joints for p in people]))


def _detections(rig, people, hidden, spec, config, meta, rng, alone):
    """What the detector saw: one person per view with one person, else every person in random slots, the
    keypoints hidden by others dropped; and the true person of each slot ``(F, V, P)`` (None for one)."""
    from mocap.io.keypoints_h5 import Detections2D, Keypoints2D
    from mocap.synth.keypoints import boxes_from_keypoints
    from mocap.synth.people import shuffle_slots

    if config.people == 1 or alone is not None:
        p = people[alone or 0]
        boxes, detected = boxes_from_keypoints(p.det.clean)
        return Keypoints2D(tuple(rig.names), p.det.keypoints, boxes, detected & np.isfinite(p.det.keypoints[..., 0]).any(-1),
                           rig.image_sizes, "blazepose33", tuple(spec.names), config.fps, meta), None
    kp = np.stack([np.where(h[..., None], np.nan, p.det.keypoints) for p, h in zip(people, hidden)])  # (N, F, V, K, 3)
    kp[~np.isfinite(kp[..., 0]).any(-1)] = np.nan
    slots, person = shuffle_slots(kp, rng)
    F, V, P = person.shape
    boxes = np.full((F, V, P, 4), np.nan)
    for n, p in enumerate(people):
        b, _ = boxes_from_keypoints(p.det.clean)
        boxes = np.where((person == n)[..., None], b[:, :, None], boxes)
    with np.errstate(invalid="ignore"):
        scores = np.where(person >= 0, np.nanmean(np.where(np.isfinite(slots[..., 2]), slots[..., 2], np.nan), -1), np.nan)
    return Detections2D(tuple(rig.names), slots, boxes, scores, rig.image_sizes, "blazepose33", tuple(spec.names),
                        config.fps, meta), person


def _save_rig(rig, path: Path, meta: dict) -> Path:
    from mocap.io.calibration_toml import save_rig

    save_rig(rig, path, {"generator": meta["generator"], "seed": meta["config"]["seed"]})
    return path


def _save_truth(path: Path, person: _Person, body, names, config: SynthConfig, hidden: np.ndarray,
                extra: dict) -> Path:
    from mocap.io.atomic import atomic_path

    motion, det = person.motion, person.det
    several = {"keypoint_hidden": hidden} if config.people > 1 else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez_compressed(
            tmp, poses=motion.poses, trans=motion.transl, betas=motion.betas, gender=np.str_(body.gender),
            mocap_framerate=np.float64(motion.fps), surface_model=np.str_(body.name),
            joints=person.joints, keypoints3d=person.kp3d, keypoint_names=np.array(names),
            keypoint_format=np.str_("blazepose33"), keypoint_outlier=det.outlier, keypoint_occluded=det.occluded,
            motion=np.str_(config.motion), seed=np.int64(config.seed), **several, **extra)
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
