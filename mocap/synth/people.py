"""Several people in one synthetic session: paths that cross, bodies that hide each other.

Person ``k`` of ``N`` walks (or squats...) on a circle of radius 0.9 m whose centre is shifted along x by
``(k - (N - 1) / 2)`` metres, so neighbouring circles intersect and the people cross each other's paths and
pass in front of each other in most cameras. One person alone keeps the single-person session exactly.

Occlusion between people, in keypoint mode, is approximate: each body is a set of capsules around its SMPL
bones (radius 12 cm for the trunk and hips, 10 cm for the head, 6 cm for the limbs); a keypoint of one
person is dropped in a view when it projects inside a capsule of a person nearer to that camera.
Shapes: ``N`` people, ``F`` frames, ``V`` views, ``K`` keypoints, ``P`` detection slots per view.
"""

from __future__ import annotations

import numpy as np

from mocap.body.model import JOINT_NAMES, PARENTS
from mocap.cameras import CameraRig

SPACING = 1.0  # metres between neighbouring circle centres
RADIUS = 0.9  # metres, each person's circle with several people
_TRUNK = ("pelvis", "spine", "hip", "collar", "neck")


def offsets(n: int) -> np.ndarray:
    """``(n, 3)`` shift of each person's path; zero for one person."""
    x = (np.arange(n) - (n - 1) / 2) * SPACING
    return np.stack([x, np.zeros(n), np.zeros(n)], 1)


def _bone_radii() -> np.ndarray:
    """``(23,)`` capsule radius of each bone (child joint 1..23 to its parent), metres."""
    out = []
    for j in range(1, len(JOINT_NAMES)):
        name = JOINT_NAMES[j]
        out.append(0.1 if name == "head" else 0.12 if any(w in name for w in _TRUNK) else 0.06)
    return np.array(out)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2D distance of points ``p`` (..., K, 1, 2) to segments ``a``-``b`` (..., 1, B, 2), and where along
    each segment the nearest point lies (0 at ``a``, 1 at ``b``)."""
    ab = b - a
    u = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    return np.linalg.norm(p - (a + u[..., None] * ab), axis=-1), u


def hidden_by_others(rig: CameraRig, keypoints: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """``(N, F, V, K)`` keypoints of each person hidden in each view by another person nearer the camera.

    Args:
        keypoints: ``(N, F, K, 3)`` world keypoints of every person.
        joints: ``(N, F, 24, 3)`` their SMPL joints (the capsules' axes).
    """
    N, F, K, _ = keypoints.shape
    hidden = np.zeros((N, F, len(rig), K), bool)
    radii = _bone_radii()
    child, parent = np.arange(1, 24), np.array(PARENTS[1:])
    for v, cam in enumerate(rig):
        kp_c = np.einsum("ij,nfkj->nfki", cam.R, keypoints) + cam.t  # camera frame
        jt_c = np.einsum("ij,nfkj->nfki", cam.R, joints) + cam.t
        kp_uv, jt_uv = cam.project(keypoints.reshape(-1, 3)).reshape(N, F, K, 2), \
            cam.project(joints.reshape(-1, 3)).reshape(N, F, 24, 2)
        for a in range(N):
            for b in range(N):
                if a == b:
                    continue
                d, u = _segment_distance(kp_uv[a][:, :, None], jt_uv[b][:, None, parent], jt_uv[b][:, None, child])
                depth_b = jt_c[b][:, parent, 2][:, None] * (1 - u) + jt_c[b][:, child, 2][:, None] * u  # (F, K, 23)
                r_px = radii * cam.K[0, 0] / np.maximum(depth_b, 0.1)
                covered = (d < r_px) & (depth_b + radii < kp_c[a][..., 2:3]) & (depth_b > 0)
                hidden[a, :, v] |= covered.any(-1)
    return hidden


def shuffle_slots(per_person: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(N, F, V, K, 3)`` detections of each person -> ``(F, V, N, K, 3)`` in a random slot order per frame
    and view (slots carry no identity, as a detector's), and the true person of each slot ``(F, V, N)``
    (-1 where the person is not detected in that view: the slot is then empty)."""
    N, F, V = per_person.shape[:3]
    order = np.argsort(rng.random((F, V, N)), axis=-1)  # slot s holds person order[..., s]
    f, v = np.meshgrid(np.arange(F), np.arange(V), indexing="ij")
    slots = per_person.transpose(1, 2, 0, 3, 4)[f[..., None], v[..., None], order]
    person = np.where(np.isfinite(slots[..., 0]).any(-1), order, -1)
    return slots, person
