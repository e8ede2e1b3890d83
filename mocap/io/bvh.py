"""BVH export: SMPL's 24-joint hierarchy with SMPL's joint names, animated by a sequence.

Conventions of the written file:
- y up, the body's rest pose faces +z (SMPL's frame); lengths in metres or centimetres (``units``).
- Joint ``OFFSET``: the joint's rest position relative to its parent, from the subject's betas. The root's
  ``OFFSET`` is zero and its position channels hold the root joint's absolute world position, so readers that add
  the root offset and readers that replace it agree.
- Rotation channels ``Zrotation Xrotation Yrotation`` (the default ``order="ZXY"``), degrees: a joint's local
  rotation is ``Rz @ Rx @ Ry`` (intrinsic, in the channel order), the joint's SMPL rotation relative to its parent.
  Euler angles are unwrapped along time so that curves have no 360-degree jumps.
- Leaf joints (head, feet, hands) end with an ``End Site`` at the top of the head, the toes and the finger tips.
- ``Frame Time`` is ``1 / fps``; frame ``i`` is the sequence's frame ``i``.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from mocap.errors import ConfigError
from mocap.io.atomic import atomic_path
from mocap.io.rig import Rig, local_rotations, root_positions
from mocap.io.smpl_npz import SmplSequence

UNITS = {"m": 1.0, "cm": 100.0}
_CHUNK = 2000  # frames formatted at a time, for progress reports


def write_bvh(path: str | os.PathLike, seq: SmplSequence, rig: Rig, units: str = "m", order: str = "ZXY",
              progress: Callable[[int, int], None] | None = None) -> None:
    """Write ``seq`` on ``rig``'s skeleton as BVH, atomically.

    Args:
        units: ``"m"`` or ``"cm"`` for offsets and root positions.
        order: Euler order of the rotation channels, a permutation of ``"XYZ"`` (intrinsic, as BVH reads them).
    """
    if units not in UNITS:
        raise ConfigError(f"unknown units {units!r}; use m or cm")
    if sorted(order) != ["X", "Y", "Z"]:
        raise ConfigError(f"Euler order {order!r} is not a permutation of XYZ")
    scale = UNITS[units]
    F, J = seq.num_frames, len(rig.names)
    # Uppercase = intrinsic in scipy: R = R_order[0] @ R_order[1] @ R_order[2], BVH's reading of its channels.
    eulers = local_rotations(seq).as_euler(order, degrees=True).reshape(F, J, 3)
    eulers = np.unwrap(eulers, period=360.0, axis=0)
    lines, joint_order = _hierarchy(rig, scale, order)
    # Motion columns follow the hierarchy as written (depth first), not SMPL's joint order.
    motion = np.concatenate([root_positions(seq, rig) * scale, eulers[:, joint_order].reshape(F, -1)], axis=1)

    header = lines + ["MOTION", f"Frames: {F}", f"Frame Time: {1.0 / seq.fps:.9g}"]
    # Micrometre and micro-degree resolution: far below the 1 mm the format is checked at.
    row = " ".join(["%.6f"] * motion.shape[1])
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\n".join(header) + "\n")
        for start in range(0, F, _CHUNK):
            block = motion[start:start + _CHUNK]
            f.write("\n".join(row % tuple(r) for r in block.tolist()) + "\n")
            if progress:
                progress(min(start + _CHUNK, F), F)


def _hierarchy(rig: Rig, scale: float, order: str) -> tuple[list[str], list[int]]:
    """The HIERARCHY section's lines, and the joints in the order they are written."""
    channels = " ".join(f"{axis}rotation" for axis in order)
    children = {j: [c for c in range(len(rig.names)) if rig.parents[c] == j] for j in range(len(rig.names))}
    offsets = rig.offsets * scale
    lines, written = ["HIERARCHY"], []

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        root = rig.parents[j] < 0
        written.append(j)
        lines.append(f"{pad}{'ROOT' if root else 'JOINT'} {rig.names[j]}")
        lines.append(f"{pad}{{")
        offset = np.zeros(3) if root else offsets[j]
        lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        lines.append(f"{pad}  CHANNELS {6 if root else 3} {'Xposition Yposition Zposition ' if root else ''}{channels}")
        for c in children[j]:
            joint(c, depth + 1)
        if not children[j]:
            end = (rig.tips[j] - rig.rest_joints[j]) * scale
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}",
                          f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(int(np.flatnonzero(rig.parents < 0)[0]), 0)
    return lines, written
