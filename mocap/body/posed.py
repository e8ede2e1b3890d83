"""The posed body in numpy, without torch: SMPL's linear blend skinning of chosen vertices, and keypoints.

The overlays draw a few thousand vertices of the mesh and the detector's keypoints per frame; posing them here
keeps torch and smplx (about 1.4 s of CPU to import) out of `mocap viz overlay`. The maths is smplx's ``lbs``
(shape and pose blend shapes, the kinematic chain, skinning) in float64 on the float32 values the torch layer
(:class:`mocap.body.model.BodyModel`) holds, so the two agree to float32 rounding.
"""

from __future__ import annotations

import numpy as np

from mocap.body.arrays import BodyArrays
from mocap.body.keypoints import KeypointSpec, along_bones, place_along_bones
from mocap.body.skeleton import NUM_JOINTS, PARENTS


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle ``(..., 3)`` -> rotation matrices ``(..., 3, 3)`` (Rodrigues' formula). Written here, not
    `mocap.rotations.axis_angle_to_matrix` (torch) or scipy's ``Rotation`` (0.4 s of CPU to import): the
    overlays load neither."""
    theta = np.linalg.norm(rotvec, axis=-1)[..., None, None]
    x, y, z = np.moveaxis(rotvec, -1, 0)
    zero = np.zeros_like(x)
    K = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*x.shape, 3, 3)
    K = K / np.where(theta > 0, theta, 1.0)  # unit axis; a zero rotation keeps K = 0, so R = I exactly
    return np.eye(3) + np.sin(theta) * K + (1 - np.cos(theta)) * (K @ K)


def _chain(rot: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posed joints ``(F, 24, 3)`` and the skinning transforms ``(F, 24, 3, 4)`` of rest ``joints`` (24, 3)
    under the per-joint rotations ``rot`` (F, 24, 3, 3) (smplx's ``batch_rigid_transform``)."""
    F = len(rot)
    R_world = np.empty_like(rot)
    posed = np.empty((F, NUM_JOINTS, 3))
    R_world[:, 0], posed[:, 0] = rot[:, 0], joints[0]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        R_world[:, j] = R_world[:, p] @ rot[:, j]
        posed[:, j] = posed[:, p] + R_world[:, p] @ (joints[j] - joints[p])
    offset = posed - np.einsum("fjab,jb->fja", R_world, joints)  # each joint's transform moves its rest place there
    return posed, np.concatenate([R_world, offset[..., None]], -1)


def pose_body(body: BodyArrays, poses: np.ndarray, betas: np.ndarray, trans: np.ndarray,
              vertex_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World joints ``(F, 24, 3)`` and vertices ``vertex_ids`` ``(F, K, 3)`` of ``body`` posed by axis-angle
    ``poses`` (F, 24, 3), shaped by ``betas`` (10,) and moved by ``trans`` (F, 3); float64."""
    rot = rotvec_to_matrix(np.asarray(poses, np.float64).reshape(-1, NUM_JOINTS, 3))
    rest_joints, rest = body.shaped(betas)
    ids = np.asarray(vertex_ids, dtype=np.int64)
    v = np.broadcast_to(rest[ids], (len(rot), len(ids), 3))
    posedirs = body.data["posedirs"][ids]  # (K, 3, 207) in SMPL's files
    if posedirs.any():  # the bundled body has none
        feature = (rot[:, 1:] - np.eye(3)).reshape(len(rot), -1)
        v = v + np.einsum("fp,kcp->fkc", feature, body._f32_of(posedirs))
    joints, A = _chain(rot, rest_joints)
    # Blending the transforms as one matrix product (BLAS): einsum took twice the time on 3,000 vertices.
    T = (body.weights[ids] @ A.reshape(len(rot), NUM_JOINTS, 12)).reshape(len(rot), len(ids), 3, 4)
    v = np.einsum("fkab,fkb->fka", T[..., :3], v) + T[..., 3]
    t = np.asarray(trans, np.float64)[:, None]
    return joints + t, v + t


def keypoints_of(spec: KeypointSpec, joints: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """``(F, K, 3)`` keypoints of ``spec`` from posed ``joints`` (F, 24, 3) and ``vertices`` (F, n, 3), its n
    surface keypoints' vertices in order, as :func:`mocap.body.keypoints.body_keypoints`: a joint, a surface
    vertex, or a place along a bone."""
    out = joints[:, np.maximum(spec.joint_index, 0)]
    out[:, spec.joint_index < 0] = vertices
    return place_along_bones(out, joints, along_bones(spec))
