"""A subject's body as exporters need it: skeleton, skinned mesh in the rest pose, and the motion as local rotations.

Conventions: metres, y up, SMPL's frame (the body faces +z in its rest pose). SMPL's rest pose has every joint
frame aligned with the world, so a joint's SMPL rotation is also its rotation relative to its parent in any format
whose rest orientations are the identity (BVH, glTF). Exporters use numpy and scipy rather than the project's torch
rotations because they work on whole files in numpy and need scipy's Euler conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from mocap.body.arrays import BodyArrays
from mocap.body.skeleton import JOINT_NAMES, PARENTS
from mocap.errors import InputDataError
from mocap.io.smpl_npz import SmplSequence

# Where a bone with several children points: pelvis -> spine1, spine3 -> neck (the others have one child or none).
_MAIN_CHILD = {0: 3, 9: 12}
_MIN_TIP_LENGTH = 0.02  # metres; Blender drops zero-length bones


@dataclass(frozen=True, eq=False)
class Rig:
    """The shaped body in its rest pose.

    Attributes:
        body_name: ``BodyModel.name`` of the body it came from.
        names: the 24 joint names; ``parents`` ``(24,)`` with -1 for the root.
        rest_joints: ``(24, 3)`` joint positions in the rest pose.
        tips: ``(24, 3)`` where each bone ends for display: its (main) child joint, or for a leaf (head, feet,
            hands) the farthest point of the skin it moves along its bone (top of the head, toes, finger tips).
        vertices: ``(V, 3)`` rest-pose mesh with the subject's betas (SMPL's pose correctives are not included:
            FBX and glTF skins cannot carry them).
        faces: ``(T, 3)``; weights: ``(V, 24)`` skinning weights.
    """

    body_name: str
    names: tuple[str, ...]
    parents: np.ndarray
    rest_joints: np.ndarray
    tips: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        """``(24, 3)`` each joint's rest position relative to its parent (the root's: relative to the origin)."""
        parent_pos = np.where(self.parents[:, None] >= 0, self.rest_joints[np.maximum(self.parents, 0)], 0.0)
        return self.rest_joints - parent_pos


def build_rig(body, betas: np.ndarray) -> Rig:
    """The ``body`` (`BodyArrays`, or a `BodyModel`: its file's arrays) shaped by ``betas`` ``(10,)``, in float32
    arithmetic (see :mod:`mocap.body.arrays`)."""
    arrays: BodyArrays = body if isinstance(body, BodyArrays) else body.arrays
    joints, vertices = arrays.shaped(betas)
    weights = arrays.weights
    parents = np.asarray(PARENTS)
    tips = np.empty_like(joints)
    for j in range(len(joints)):
        children = [c for c in range(len(joints)) if parents[c] == j]
        if children:
            tips[j] = joints[_MAIN_CHILD.get(j, children[0])]
            continue
        direction = joints[j] - joints[parents[j]]
        direction /= np.linalg.norm(direction)
        skin = vertices[weights.argmax(1) == j]
        reach = max(((skin - joints[j]) @ direction).max(initial=0.0), _MIN_TIP_LENGTH)
        tips[j] = joints[j] + reach * direction
    return Rig(arrays.name, JOINT_NAMES, parents, joints, tips, vertices, arrays.faces, weights)


def check_finite(seq: SmplSequence) -> None:
    """Exporters need a pose for every frame: see :func:`mocap.io.smpl_npz.hold_invalid_frames`."""
    bad = np.flatnonzero(seq.invalid_frames())
    if len(bad):
        raise InputDataError(f"{len(bad)} frames (first: {bad[0]}) hold NaN or infinite values; "
                             "fill them first (hold_invalid_frames)")


def local_rotations(seq: SmplSequence) -> Rotation:
    """The ``F * 24`` joint rotations relative to their parents, frame-major (``as_matrix()`` is ``(F*24, 3, 3)``)."""
    check_finite(seq)
    return Rotation.from_rotvec(seq.poses.reshape(-1, 3))


def root_positions(seq: SmplSequence, rig: Rig) -> np.ndarray:
    """``(F, 3)`` world position of the root joint: SMPL rotates the body about it, then translates by ``trans``."""
    return seq.trans + rig.rest_joints[0]


def continuous_quaternions(rot: Rotation, num_frames: int) -> np.ndarray:
    """``(F, J, 4)`` xyzw quaternions with signs chosen so that consecutive frames agree (no long-way blends)."""
    q = rot.as_quat().reshape(num_frames, -1, 4)
    flips = np.cumsum(np.einsum("fjc,fjc->fj", q[1:], q[:-1]) < 0, axis=0) % 2
    q[1:] *= np.where(flips == 1, -1.0, 1.0)[..., None]
    return q
