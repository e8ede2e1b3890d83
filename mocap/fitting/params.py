"""Body parameters of a batch of frames in the world frame, and their small-step updates.

Rotations are matrices: ``global_orient`` (B, 3, 3) maps the body frame to the world, ``body_pose``
(B, 23, 3, 3) SMPL's relative joint rotations. A step ``delta`` (B, P) packs, in this order, 24 x 3 rotation
increments (joint 0 = global orientation), 3 translation increments and, unless betas are held, 10 betas
increments; rotations are updated on the right, ``R <- R @ exp(delta_j)`` (increments in each joint's own
frame, so the step is free of axis-angle singularities).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mocap.rotations import axis_angle_to_matrix, matrix_to_axis_angle

NUM_ROT = 24 * 3
NUM_BETAS = 10


def step_size(with_betas: bool) -> int:
    """Length ``P`` of one frame's step vector."""
    return NUM_ROT + 3 + (NUM_BETAS if with_betas else 0)


@dataclass(frozen=True)
class BodyParams:
    """SMPL parameters of ``B`` frames in the world frame (metres, y up); methods other than :meth:`index`,
    :meth:`cat` and :meth:`poses` also accept extra leading axes ``(B, V, ...)``."""

    global_orient: Tensor  # (B, 3, 3)
    body_pose: Tensor  # (B, 23, 3, 3)
    betas: Tensor  # (B, 10)
    transl: Tensor  # (B, 3)

    def __len__(self) -> int:
        return self.transl.shape[0]

    @property
    def rotations(self) -> Tensor:
        """``(*, 24, 3, 3)``: global orientation then the 23 body joints."""
        return torch.cat([self.global_orient[..., None, :, :], self.body_pose], -3)

    @classmethod
    def from_rotations(cls, rot: Tensor, betas: Tensor, transl: Tensor) -> "BodyParams":
        return cls(rot[..., 0, :, :], rot[..., 1:, :, :], betas, transl)

    @classmethod
    def rest(cls, B: int, dtype=torch.float32) -> "BodyParams":
        eye = torch.eye(3, dtype=dtype)
        return cls(eye.expand(B, 3, 3).clone(), eye.expand(B, 23, 3, 3).clone(),
                   torch.zeros(B, NUM_BETAS, dtype=dtype), torch.zeros(B, 3, dtype=dtype))

    def retract(self, delta: Tensor, with_betas: bool) -> "BodyParams":
        """Apply a step ``delta`` ``(*, P)`` whose leading axes broadcast against the batch."""
        rot = self.rotations @ axis_angle_to_matrix(delta[..., :NUM_ROT].unflatten(-1, (24, 3)))
        transl = self.transl + delta[..., NUM_ROT:NUM_ROT + 3]
        betas = self.betas + delta[..., NUM_ROT + 3:] if with_betas else self.betas.expand(*transl.shape[:-1], NUM_BETAS)
        return BodyParams.from_rotations(rot, betas, transl)

    def unsqueeze(self, dim: int) -> "BodyParams":
        """A leading axis added at ``dim`` (0 or 1), e.g. to broadcast a batch against per-view steps."""
        return BodyParams(*(getattr(self, k).unsqueeze(dim) for k in ("global_orient", "body_pose", "betas", "transl")))

    def index(self, idx) -> "BodyParams":
        return BodyParams(self.global_orient[idx], self.body_pose[idx], self.betas[idx], self.transl[idx])

    @staticmethod
    def cat(parts: list["BodyParams"]) -> "BodyParams":
        return BodyParams(*(torch.cat([getattr(p, k) for p in parts]) for k in ("global_orient", "body_pose", "betas", "transl")))

    def where(self, mask: Tensor, other: "BodyParams") -> "BodyParams":
        """Per frame: ``self`` where ``mask`` (B,) else ``other``."""
        pick = lambda a, b: torch.where(mask.reshape(-1, *([1] * (a.dim() - 1))), a, b)
        return BodyParams(*(pick(getattr(self, k), getattr(other, k)) for k in ("global_orient", "body_pose", "betas", "transl")))

    def poses(self) -> Tensor:
        """``(B, 72)`` axis-angle, AMASS/SMPL layout (global orientation first)."""
        return matrix_to_axis_angle(self.rotations).flatten(1)

    @classmethod
    def from_poses(cls, poses: Tensor, betas: Tensor, transl: Tensor) -> "BodyParams":
        """From ``(B, 72)`` axis-angle, ``(B, 10)`` or ``(10,)`` betas and ``(B, 3)`` translation."""
        rot = axis_angle_to_matrix(poses.reshape(len(poses), 24, 3))
        return cls.from_rotations(rot, betas.expand(len(poses), NUM_BETAS), transl)
