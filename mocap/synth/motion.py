"""Procedural human motion as SMPL parameters: smooth at 60 fps, inside joint limits, moving and turning.

Conventions (SMPL's rest frame, shared by the bundled body): y up, the body faces +z, its left side at +x.
Each joint's local rotation is built from three angles ``(a, b, c)`` in degrees as ``R_x(a) @ R_y(b) @ R_z(c)``
(scipy's intrinsic ``"XYZ"``), written for the left side; the right side mirrors them (``(a, -b, -c)``).
In these terms hip flexion is ``a < 0``, knee flexion ``a > 0``, forward trunk bend ``a > 0``, left arm down
from the T-pose ``c ~ -78``, left elbow flexion ``b < 0``.

The root moves by integrating a forward speed and a yaw rate, with walking steered onto a circle around the
origin, so any length stays inside the capture volume and motions blend without jumps (``mixed``). The
body is put on the floor afterwards: the lowest foot vertex of every frame lies at the motion's lift height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from mocap.body.model import JOINT_NAMES, NUM_BETAS, BodyModel, in_chunks
from mocap.errors import ConfigError

MOTIONS = ("walk", "squat", "jumping_jacks", "arm_raise", "turn", "mixed")
J = {name: i for i, name in enumerate(JOINT_NAMES)}

#: Angle limits (degrees) per joint, left side, as ((a_min, a_max), (b_min, b_max), (c_min, c_max)); every
#: generated angle is clipped to them. Ranges are those of ordinary movement, inside anatomical limits.
LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "pelvis": ((-25, 25), (-20, 20), (-15, 15)),
    "hip": ((-110, 30), (-35, 35), (-25, 45)),
    "knee": ((0, 140), (-5, 5), (-5, 5)),
    "ankle": ((-30, 45), (-15, 15), (-20, 20)),
    "foot": ((-30, 30), (-5, 5), (-5, 5)),
    "spine1": ((-15, 35), (-20, 20), (-15, 15)),
    "spine2": ((-15, 35), (-20, 20), (-15, 15)),
    "spine3": ((-15, 35), (-20, 20), (-15, 15)),
    "neck": ((-30, 40), (-40, 40), (-25, 25)),
    "head": ((-30, 30), (-40, 40), (-20, 20)),
    "collar": ((-10, 10), (-15, 15), (-10, 25)),
    "shoulder": ((-175, 60), (-60, 60), (-90, 90)),
    "elbow": ((-5, 5), (-145, 0), (-5, 5)),
    "wrist": ((-30, 30), (-60, 60), (-30, 30)),
    "hand": ((0, 0), (0, 0), (0, 0)),
}


def _limit_key(joint: str) -> str:
    return joint.removeprefix("left_").removeprefix("right_")


def limits_array() -> np.ndarray:
    """``(24, 3, 2)`` limits in degrees, mirrored for the right side (``b`` and ``c`` negated)."""
    out = np.zeros((len(JOINT_NAMES), 3, 2))
    for j, name in enumerate(JOINT_NAMES):
        lim = np.array(LIMITS[_limit_key(name)], dtype=float)
        if name.startswith("right_"):
            lim[1:] = -lim[1:, ::-1]
        out[j] = lim
    return out


@dataclass(frozen=True)
class Drive:
    """One motion sampled at times ``t`` (F,): joint angles ``(F, 24, 3)`` degrees (left-side convention,
    see the module docstring), forward ``speed`` (F,) m/s, ``yaw_rate`` (F,) rad/s, ``steer`` (F,) in [0, 1]
    (how strongly to steer onto the walking circle), ``lift`` (F,) metres of the feet above the floor."""

    angles: np.ndarray
    speed: np.ndarray
    yaw_rate: np.ndarray
    steer: np.ndarray
    lift: np.ndarray


def _new(t: np.ndarray) -> dict[str, np.ndarray]:
    z = np.zeros_like(t)
    return {"angles": np.zeros((len(t), 24, 3)), "speed": z.copy(), "yaw_rate": z.copy(), "steer": z.copy(),
            "lift": z.copy()}


def _both(angles: np.ndarray, joint: str, a=0.0, b=0.0, c=0.0, ra=None, rb=None, rc=None) -> None:
    """Set a left/right pair in the left-side convention; the right side takes ``ra, rb, rc`` where given
    (a phase-shifted gait), else the left's values."""
    F = len(angles)
    right = (a if ra is None else ra, b if rb is None else rb, c if rc is None else rc)
    for side, vals in (("left", (a, b, c)), ("right", right)):
        angles[:, J[f"{side}_{joint}"]] = np.stack([np.broadcast_to(np.asarray(v, float), (F,)) for v in vals], -1)


def _arms_down(angles: np.ndarray) -> None:
    _both(angles, "shoulder", c=-76.0)
    _both(angles, "elbow", b=-12.0)


def walk(t: np.ndarray, rng: np.random.Generator) -> Drive:
    d = _new(t)
    cadence = rng.uniform(0.85, 0.95)  # gait cycles per second
    phi = 2 * np.pi * cadence * t + rng.uniform(0, 2 * np.pi)
    A = d["angles"]
    s_l, s_r = np.sin(phi), np.sin(phi + np.pi)
    _both(A, "hip", a=-7.5 - 17.5 * s_l, ra=-7.5 - 17.5 * s_r)
    # Knee flexion peaks early in swing, as the hip moves from extension to flexion.
    _both(A, "knee", a=5 + 55 * ((1 + np.cos(phi + 0.3)) / 2) ** 3, ra=5 + 55 * ((1 + np.cos(phi + np.pi + 0.3)) / 2) ** 3)
    _both(A, "ankle", a=8 * np.sin(phi - 0.8), ra=8 * np.sin(phi + np.pi - 0.8))
    _both(A, "shoulder", a=18 * s_l, c=-76.0, ra=18 * s_r)
    _both(A, "elbow", b=-15 - 12 * (1 - s_l) / 2, rb=-15 - 12 * (1 - s_r) / 2)
    A[:, J["pelvis"], 1] = -5 * s_l
    A[:, J["pelvis"], 2] = 2 * np.sin(2 * phi)
    A[:, J["spine2"], 1] = 4 * s_l
    A[:, J["spine1"], 0] = 4.0
    d["speed"][:] = rng.uniform(0.9, 1.2)
    d["steer"][:] = 1.0
    return Drive(**d)


def squat(t: np.ndarray, rng: np.random.Generator) -> Drive:
    d = _new(t)
    period = rng.uniform(2.6, 3.4)
    s = (1 - np.cos(2 * np.pi * t / period)) / 2
    depth = rng.uniform(0.8, 1.0)
    A = d["angles"]
    _both(A, "hip", a=-100 * depth * s, c=8 * s)
    _both(A, "knee", a=115 * depth * s)
    _both(A, "ankle", a=-25 * depth * s)
    _both(A, "shoulder", a=-80 * s, c=-76 + 20 * s)
    _both(A, "elbow", b=-12.0)
    A[:, J["pelvis"], 0] = 15 * depth * s
    A[:, J["spine1"], 0] = 10 * s
    A[:, J["spine2"], 0] = 8 * s
    A[:, J["neck"], 0] = -15 * s
    d["yaw_rate"][:] = np.radians(rng.uniform(-12, 12))
    return Drive(**d)


def jumping_jacks(t: np.ndarray, rng: np.random.Generator) -> Drive:
    d = _new(t)
    period = rng.uniform(0.9, 1.1)
    w = 2 * np.pi * t / period
    a = (1 - np.cos(w)) / 2  # 0 closed, 1 open
    A = d["angles"]
    _both(A, "shoulder", c=-76 + 158 * a)
    _both(A, "elbow", b=-12 + 4 * a)
    _both(A, "hip", c=18 * a)
    # A hop at each transition: feet leave the floor while the limbs move, land at open and closed.
    hop = np.sin(w) ** 2
    _both(A, "knee", a=12 + 10 * (1 - hop))
    _both(A, "hip", a=-6 - 5 * (1 - hop), c=18 * a)
    _both(A, "ankle", a=15 * hop)
    d["lift"][:] = rng.uniform(0.05, 0.09) * hop
    return Drive(**d)


def arm_raise(t: np.ndarray, rng: np.random.Generator) -> Drive:
    d = _new(t)
    period = rng.uniform(3.6, 4.4)
    ph = (t / period) % 1.0
    first = ph < 0.5  # front raise in the first half of each period, side raise in the second
    r = (1 - np.cos(4 * np.pi * ph)) / 2
    A = d["angles"]
    _both(A, "shoulder", a=np.where(first, -165 * r, 0.0), c=np.where(first, -76 + 10 * r, -76 + 156 * r))
    _both(A, "elbow", b=-12 + 8 * r)
    A[:, J["neck"], 0] = -10 * r
    d["yaw_rate"][:] = np.radians(25) * np.cos(2 * np.pi * t / (2 * period))
    return Drive(**d)


def turn(t: np.ndarray, rng: np.random.Generator) -> Drive:
    d = _new(t)
    step = 2 * np.pi * rng.uniform(1.8, 2.2) * t
    lift_l, lift_r = np.clip(np.sin(step), 0, None) ** 2, np.clip(-np.sin(step), 0, None) ** 2
    A = d["angles"]
    _both(A, "hip", a=-25 * lift_l, ra=-25 * lift_r)
    _both(A, "knee", a=5 + 40 * lift_l, ra=5 + 40 * lift_r)
    _arms_down(A)
    A[:, J["head"], 1] = 15.0 * np.sign(rng.uniform(-1, 1))
    d["yaw_rate"][:] = np.radians(rng.choice([-1, 1]) * rng.uniform(70, 100))
    return Drive(**d)


def mixed(t: np.ndarray, rng: np.random.Generator, segment: float = 2.5, fade: float = 0.6) -> Drive:
    """The other motions in turn, ``segment`` seconds each, cross-faded over ``fade`` seconds."""
    order = ["walk", "squat", "jumping_jacks", "arm_raise", "turn"]
    parts = [GENERATORS[name](t, rng) for name in order]
    centres = np.arange(len(order)) * segment
    # Smooth partition of unity over a cycle of segments.
    cycle = len(order) * segment
    tc = t % cycle
    raw = []
    for c in centres:
        dist = np.minimum(np.abs(tc - c - segment / 2), cycle - np.abs(tc - c - segment / 2))
        x = np.clip((segment / 2 + fade / 2 - dist) / fade, 0, 1)
        raw.append(x * x * (3 - 2 * x))
    w = np.stack(raw)
    w /= w.sum(0, keepdims=True)
    fields = {}
    for f in ("angles", "speed", "yaw_rate", "steer", "lift"):
        vals = np.stack([getattr(p, f) for p in parts])  # (M, F, ...)
        fields[f] = (w.reshape(w.shape + (1,) * (vals.ndim - 2)) * vals).sum(0)
    return Drive(**fields)


GENERATORS: dict[str, Callable[[np.ndarray, np.random.Generator], Drive]] = {
    "walk": walk, "squat": squat, "jumping_jacks": jumping_jacks, "arm_raise": arm_raise, "turn": turn, "mixed": mixed,
}


@dataclass(frozen=True)
class Motion:
    """SMPL parameters of a whole sequence in the world frame (y up)."""

    global_orient: np.ndarray  # (F, 3) axis-angle
    body_pose: np.ndarray  # (F, 23, 3) axis-angle
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (F, 3) metres
    fps: float

    @property
    def poses(self) -> np.ndarray:
        """(F, 72) AMASS/SMPL order: global orientation, then the 23 body joints."""
        return np.concatenate([self.global_orient, self.body_pose.reshape(len(self.body_pose), -1)], 1)


def angles_to_rotvec(angles: np.ndarray) -> np.ndarray:
    """``(..., 3)`` left-convention angles (degrees) with the right side already mirrored -> axis-angle."""
    flat = angles.reshape(-1, 3)
    return Rotation.from_euler("XYZ", flat, degrees=True).as_rotvec().reshape(angles.shape)


def _mirror_right(angles: np.ndarray) -> np.ndarray:
    out = angles.copy()
    right = [i for i, n in enumerate(JOINT_NAMES) if n.startswith("right_")]
    out[:, right, 1:] *= -1
    return out


def _root_path(drive: Drive, fps: float, rng: np.random.Generator, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Integrate speed and yaw rate into heading (F,) and floor position (F, 2) (x, z)."""
    F = len(drive.speed)
    theta = rng.uniform(0, 2 * np.pi)
    pos = radius * np.array([np.sin(theta), np.cos(theta)]) * rng.uniform(0.0, 1.0)
    heading = theta + np.pi / 2
    headings, positions = np.empty(F), np.empty((F, 2))
    dt = 1.0 / fps
    for f in range(F):
        headings[f], positions[f] = heading, pos
        # Steer onto the circle of `radius` (counter-clockwise seen from above): aim at its tangent, bent inward
        # when outside the circle, outward when inside.
        r = np.hypot(*pos)
        ang = np.arctan2(pos[0], pos[1])
        desired = ang + np.pi / 2 + np.clip((r - radius) / radius, -1, 1) * 0.8
        err = np.angle(np.exp(1j * (desired - heading)))
        yaw_rate = drive.yaw_rate[f] + drive.steer[f] * (drive.speed[f] / radius + 1.5 * err)
        heading += yaw_rate * dt
        pos = pos + drive.speed[f] * dt * np.array([np.sin(heading), np.cos(heading)])
    return headings, positions


def foot_vertices(body: BodyModel) -> np.ndarray:
    """Vertex ids skinned mostly to the ankles and feet: the candidates for the lowest point of a standing body."""
    w = body.layer.lbs_weights.detach().cpu().numpy()
    feet = [J[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    return np.flatnonzero(np.isin(w.argmax(1), feet))


def generate_motion(kind: str, frames: int, fps: float, body: BodyModel, rng: np.random.Generator,
                    betas: np.ndarray | None = None, radius: float = 1.2) -> Motion:
    """``frames`` frames of motion ``kind`` for ``body`` (its shape: ``betas`` (10,), random when ``None``)."""
    if kind not in GENERATORS:
        raise ConfigError(f"unknown motion {kind!r}; choose one of {', '.join(MOTIONS)}")
    if frames < 1:
        raise ConfigError(f"--frames {frames}: need at least one frame")
    if betas is None:
        betas = np.clip(rng.normal(0.0, 1.0, NUM_BETAS), -2.0, 2.0) * np.linspace(1.0, 0.5, NUM_BETAS)
    t = np.arange(frames) / fps
    drive = GENERATORS[kind](t, rng)
    lim = limits_array()
    angles = np.clip(_mirror_right(drive.angles), lim[..., 0], lim[..., 1])
    rotvec = angles_to_rotvec(angles)
    heading, pos = _root_path(drive, fps, rng, radius)
    R_root = Rotation.from_rotvec(np.stack([np.zeros(frames), heading, np.zeros(frames)], 1)) * Rotation.from_rotvec(rotvec[:, 0])
    global_orient = R_root.as_rotvec()
    body_pose = rotvec[:, 1:]

    # Place the pelvis over the path, then drop the body so its lowest foot vertex is at the lift height.
    with torch.no_grad():
        pelvis_rest = body.rest_joints(torch.as_tensor(betas[None], dtype=body.dtype))[0, 0].double().numpy()
        transl = np.zeros((frames, 3))
        transl[:, 0], transl[:, 2] = pos[:, 0] - pelvis_rest[0], pos[:, 1] - pelvis_rest[2]
        feet = foot_vertices(body)
        lowest = in_chunks(lambda *a: body.points(*a, vertex_ids=feet)[1][..., 1].amin(1), frames,
                           *(torch.as_tensor(a, dtype=body.dtype) for a in (global_orient, body_pose, betas[None], transl)))
    lowest = lowest.double().numpy()
    # The lowest point switches between heel and toe; a light smoothing keeps the root's acceleration plausible.
    transl[:, 1] = gaussian_filter1d(drive.lift - lowest, 1.5, mode="nearest")
    return Motion(global_orient, body_pose, np.asarray(betas, dtype=float), transl, float(fps))
