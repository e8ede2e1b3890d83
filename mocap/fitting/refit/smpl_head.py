"""The SMPL layer inside ReFit: skinning, the 67 surface markers and SPIN's 49 output joints.

Buffer names and order are those of the released checkpoints (``smplx.SMPLLayer`` plus ``J_regressor_extra``).
Values come from an SMPL-format body (:func:`mocap.body.model.load_body`) and SPIN's extra-joint regressor;
ReFit needs SMPL's 6890-vertex topology because its markers are SMPL vertex ids.
"""

from __future__ import annotations

import numpy as np
import torch
from smplx.lbs import lbs
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
from smplx.vertex_joint_selector import VertexJointSelector
from torch import Tensor, nn

from mocap.errors import InputDataError

__all__ = ["RefitSMPL", "MARKER_VERTEX_IDS", "SPIN_JOINT_MAP", "NUM_VERTICES"]

NUM_VERTICES = 6890
NUM_FACES = 13776
# ReFit's 67 "marker" vertices (the repository's data/smpl/smpl_ssm.npy, a public index list).
MARKER_VERTEX_IDS = (
    0, 183, 239, 601, 630, 706, 857, 874, 1053, 1058, 1112, 1306, 1368, 1396, 1454, 1504, 1666, 1725, 1741, 1863,
    2108, 2112, 2174, 2224, 3015, 3076, 3078, 3116, 3123, 3233, 3284, 3327, 3336, 3346, 3387, 3503, 3512, 3695,
    3749, 4118, 4222, 4343, 4360, 4538, 4544, 4598, 4722, 4841, 4871, 4927, 5135, 5194, 5210, 5299, 5414, 5568,
    5635, 5686, 6306, 6540, 6543, 6633, 6683, 6728, 6736, 6747, 6786,
)
# SPIN's 49 joints (25 OpenPose + 24 ground-truth joints) as indices into
# [24 SMPL joints, 21 smplx vertex joints, 9 J_regressor_extra joints].
SPIN_JOINT_MAP = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52, 53, 24, 26, 25, 28, 27,
)


class RefitSMPL(nn.Module):
    """SMPL skinning with ReFit's extra outputs. Buffers start at zero; fill them with :meth:`set_body`
    or from a checkpoint."""

    def __init__(self):
        super().__init__()
        V = NUM_VERTICES
        self.register_buffer("shapedirs", torch.zeros(V, 3, 10))
        self.register_buffer("faces_tensor", torch.zeros(NUM_FACES, 3, dtype=torch.long))
        self.register_buffer("v_template", torch.zeros(V, 3))
        self.register_buffer("J_regressor", torch.zeros(24, V))
        self.register_buffer("posedirs", torch.zeros(207, 3 * V))
        self.register_buffer("parents", torch.zeros(24, dtype=torch.long))
        self.register_buffer("lbs_weights", torch.zeros(V, 24))
        self.register_buffer("J_regressor_extra", torch.zeros(9, V))
        self.vertex_joint_selector = VertexJointSelector(vertex_ids=SMPLX_VERTEX_IDS["smplh"])
        self.register_buffer("joint_map", torch.tensor(SPIN_JOINT_MAP), persistent=False)

    @torch.no_grad()
    def set_body(self, body, J_regressor_extra: np.ndarray | Tensor | None = None) -> None:
        """Copy the skinning buffers from a :class:`mocap.body.model.BodyModel` (SMPL topology) and,
        when given, the ``(9, 6890)`` extra-joint regressor."""
        layer = body.layer
        if layer.v_template.shape[0] != NUM_VERTICES or body.faces.shape[0] != NUM_FACES:
            raise InputDataError(f"body model {body.name!r} has {layer.v_template.shape[0]} vertices; ReFit needs "
                                 f"SMPL's topology ({NUM_VERTICES} vertices): pass SMPL files (MOCAP_SMPL_DIR)")
        for name in ("shapedirs", "v_template", "J_regressor", "posedirs", "parents", "lbs_weights"):
            getattr(self, name).copy_(getattr(layer, name))
        self.faces_tensor.copy_(torch.as_tensor(body.faces.astype(np.int64)))
        self.parents[0] = -1
        if J_regressor_extra is not None:
            J = torch.as_tensor(np.asarray(J_regressor_extra), dtype=torch.float32)
            if J.shape != (9, NUM_VERTICES):
                raise InputDataError(f"J_regressor_extra has shape {tuple(J.shape)}, expected (9, {NUM_VERTICES})")
            self.J_regressor_extra.copy_(J)

    def forward(self, rotmat: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
        """``rotmat (N, 24, 3, 3)``, ``betas (N, 10)`` -> vertices ``(N, 6890, 3)``, SPIN joints ``(N, 49, 3)``
        (SMPL model frame: no translation)."""
        verts, joints = lbs(betas, rotmat, self.v_template, self.shapedirs, self.posedirs, self.J_regressor,
                            self.parents, self.lbs_weights, pose2rot=False)
        joints = self.vertex_joint_selector(verts, joints)
        extra = torch.einsum("bik,ji->bjk", verts, self.J_regressor_extra)
        return verts, torch.cat([joints, extra], 1)[:, self.joint_map]

    def rest_pelvis(self, betas: Tensor) -> Tensor:
        """``(N, 10)`` -> ``(N, 3)``: the root joint of the shaped body in the rest pose (SMPL rotates about it)."""
        v = self.v_template + torch.einsum("vcb,nb->nvc", self.shapedirs, betas)
        return torch.einsum("v,nvc->nc", self.J_regressor[0], v)
