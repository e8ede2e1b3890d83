"""Anatomical joint angles of hips, knees, shoulders and elbows: flexion, abduction, rotation (degrees).

Convention (ISB-like: Wu et al. 2002, 2005, Cardan angles of the distal segment relative to the proximal one):

- Segment frames are SMPL's: in the rest pose every joint frame is the world's, x to the body's left, y up,
  z forward, so a joint's SMPL rotation is the distal segment's orientation in the proximal segment's frame.
  Proximal segments: pelvis for the hip (thigh), thigh for the knee (shank), **thorax** (spine3) for the shoulder
  (humerus; SMPL's collar rotation is included, as the ISB's thoraco-humeral angles include the shoulder girdle),
  humerus for the elbow (forearm).
- Neutral (all angles 0): the rest pose, except the shoulder, whose neutral is the arm hanging straight down from
  the rest pose's shoulder (the rest pose's arm abducted 90 degrees), palm facing the thigh.
- Sequences, intrinsic (each rotation about an axis moved by the previous ones): hip, knee and shoulder
  **X-Z-Y** (flexion about the proximal lateral axis, abduction about the floating anterior axis, rotation about
  the distal segment's long axis, ISB's Z-X-Y in ISB's own axis names); elbow **Y-Z-X** (the rest pose's forearm
  lies along x with the hinge axis vertical: flexion about y, abduction about the floating z, rotation about
  the forearm's long axis x).
- Signs, the same for left and right (the right side is the mirror image): flexion positive = hip and shoulder
  bringing the limb forward, knee bringing the heel back, elbow bringing the hand forward; abduction positive =
  the distal segment moving away from the body's midline (elbow: the forearm moving up from the rest pose);
  rotation positive = internal rotation (elbow: pronation, the palm of the rest pose turning backward).
- Gimbal lock: each sequence is singular where the middle angle (abduction) is +-90 degrees; there flexion and
  rotation share an axis and only their sum is defined (a shoulder in the rest T-pose is such a pose).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mocap.body.model import JOINT_NAMES
from mocap.io.atomic import save_figure, write_text

ANGLES = ("flexion", "abduction", "rotation")
SIDES = ("left", "right")
# joint -> (SMPL joints from the proximal segment down, intrinsic sequence, left-side signs per angle)
_JOINTS = {
    "hip": (("hip",), "XZY", (-1, 1, -1)),
    "knee": (("knee",), "XZY", (1, 1, -1)),
    "shoulder": (("collar", "shoulder"), "XZY", (-1, 1, -1)),
    "elbow": (("elbow",), "YZX", (-1, 1, 1)),
}
# Mirroring x -> -x keeps rotations about x and reverses those about y and z.
_MIRROR = {"X": 1, "Y": -1, "Z": -1}


def _neutral(joint: str, side: str) -> Rotation:
    if joint != "shoulder":
        return Rotation.identity()
    return Rotation.from_euler("z", -90 if side == "left" else 90, degrees=True)  # arm from the T-pose down


def anatomical_angles(poses: np.ndarray) -> dict[str, np.ndarray]:
    """``{"left_hip_flexion": (F,), ...}`` degrees from axis-angle ``poses`` ``(F, 24, 3)``; NaN frames stay NaN.

    Keys: ``{side}_{joint}_{angle}`` for side in left/right, joint in hip/knee/shoulder/elbow, angle in
    flexion/abduction/rotation (module docstring for the convention).
    """
    poses = np.asarray(poses, dtype=np.float64)
    F = len(poses)
    ok = np.isfinite(poses).all((1, 2))
    out = {}
    for joint, (chain, seq, signs) in _JOINTS.items():
        for side in SIDES:
            rel = Rotation.identity(int(ok.sum()))
            for part in chain:
                rel = rel * Rotation.from_rotvec(poses[ok, JOINT_NAMES.index(f"{side}_{part}")])
            euler = np.degrees((rel * _neutral(joint, side).inv()).as_euler(seq))
            for k, angle in enumerate(ANGLES):
                sign = signs[k] * (1 if side == "left" else _MIRROR[seq[k]])
                values = np.full(F, np.nan)
                values[ok] = sign * euler[:, k]
                out[f"{side}_{joint}_{angle}"] = values
    return out


def write_angles_csv(path: str | os.PathLike, angles: dict[str, np.ndarray], fps: float) -> Path:
    """``frame, time_s`` and one column per angle (degrees, 3 decimals; empty where NaN), atomically."""
    F = len(next(iter(angles.values())))
    table = np.column_stack([np.arange(F), np.arange(F) / fps, *angles.values()])
    lines = [",".join(("frame", "time_s", *angles))]
    lines += [",".join([str(int(row[0])), f"{row[1]:.6f}", *("" if np.isnan(v) else f"{v:.3f}" for v in row[2:])])
              for row in table]
    write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def plot_angles(angles: dict[str, np.ndarray], fps: float):
    """A 4 x 3 grid (hip, knee, shoulder, elbow x flexion, abduction, rotation), left and right over time."""
    from mocap.viz.plot import _fig

    plt = _fig()
    F = len(next(iter(angles.values())))
    t = np.arange(F) / fps
    fig, axes = plt.subplots(len(_JOINTS), len(ANGLES), figsize=(14, 11), sharex=True, constrained_layout=True)
    for r, joint in enumerate(_JOINTS):
        for c, angle in enumerate(ANGLES):
            ax = axes[r, c]
            for side, colour in zip(SIDES, ("C0", "C3")):
                ax.plot(t, angles[f"{side}_{joint}_{angle}"], lw=1.2, color=colour, label=side)
            ax.set_title(f"{joint} {angle}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("degrees", fontsize=9)
    fig.suptitle("Anatomical angles (ISB-like Cardan angles relative to the proximal segment; + = flexion, "
                 "abduction, internal rotation)", fontsize=11)
    return fig


def write_angle_outputs(result, out_dir: str | os.PathLike) -> list[Path]:
    """``anatomical_angles.csv`` and ``anatomical_angles.png`` of ``result`` (a `SmplSequence`) in ``out_dir``."""
    out_dir = Path(out_dir)
    angles = anatomical_angles(result.poses)
    return [write_angles_csv(out_dir / "anatomical_angles.csv", angles, result.fps),
            save_figure(plot_angles(angles, result.fps), out_dir / "anatomical_angles.png", dpi=90)]
