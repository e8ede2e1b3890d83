"""The body layer: SMPL-format models through smplx, one wrapper for the user's SMPL files and our bundled body.

Parameters follow SMPL: ``global_orient`` (B, 3), ``body_pose`` (B, 23, 3) axis-angle, or rotation matrices
(B, 3, 3) / (B, 23, 3, 3); ``betas`` (B, 10); ``transl`` (B, 3), metres. Joints are SMPL's 24, in SMPL's order.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass

import numpy as np
import smplx
import torch
from smplx.lbs import batch_rigid_transform, lbs

from mocap.errors import InputDataError
from mocap.rotations import axis_angle_to_matrix

from mocap.body.arrays import ASSETS, OPEN_BODY_FILE, SMPL_KEYS, BodyArrays, load_body_arrays  # noqa: F401  (re-exported)
from mocap.body.skeleton import JOINT_NAMES, NUM_BETAS, NUM_JOINTS, PARENTS  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class BodyOutput:
    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 24, 3)


def _rotmats(x: torch.Tensor, n: int) -> torch.Tensor:
    """Axis-angle ``(B, n*3)``/``(B, n, 3)`` or matrices ``(B, n, 3, 3)`` -> ``(B, n, 3, 3)``."""
    if x.shape[-2:] == (3, 3) and x.dim() >= 3 and (x.dim() == 4 or n == 1):
        return x.reshape(-1, n, 3, 3)
    return axis_angle_to_matrix(x.reshape(-1, n, 3))


class BodyModel(torch.nn.Module):
    """A thin stateless wrapper over ``smplx.SMPLLayer`` with a fast path for sparse points.

    Attributes:
        name: the body model's name as written into results (``surface_model``), e.g. ``open_body_neutral``.
        topology: ``"smpl"`` for SMPL's 6890-vertex mesh, ``"open"`` for the bundled body.
        gender: ``neutral``, ``male`` or ``female``.
    """

    def __init__(self, data: dict[str, np.ndarray], name: str, topology: str, gender: str = "neutral",
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        missing = [k for k in SMPL_KEYS if k not in data]
        if missing:
            raise InputDataError(f"body model {name!r} lacks the keys {', '.join(missing)}")
        struct = smplx.utils.Struct(**{k: np.asarray(data[k]) for k in SMPL_KEYS})
        # smplx prints a warning about SMPL's 10 shape coefficients to stdout, which would pollute CLI output.
        with contextlib.redirect_stdout(io.StringIO()):
            self.layer = smplx.SMPLLayer(model_path=name, data_struct=struct, num_betas=NUM_BETAS, dtype=dtype)
        self.name, self.topology, self.gender = name, topology, gender
        # The same file for torch-free code (exporters), without the pose blend shapes it never uses: 33 MB for
        # the bundled body, already in the layer.
        self.arrays = BodyArrays({k: v for k, v in data.items() if k != "posedirs"}, name, topology, gender)
        self.faces = np.asarray(data["f"], dtype=np.int64)
        J_reg = self.layer.J_regressor
        # Joints are linear in betas before the kinematic chain: regress once, reuse for every frame.
        self.register_buffer("J_template", J_reg @ self.layer.v_template, persistent=False)
        self.register_buffer("J_shapedirs", torch.einsum("jv,vcb->jcb", J_reg, self.layer.shapedirs), persistent=False)
        self.register_buffer("parents", torch.tensor(PARENTS, dtype=torch.long), persistent=False)
        self.has_posedirs = bool(torch.any(self.layer.posedirs != 0))
        if not self.has_posedirs:  # the bundled body has none: one zero seen everywhere, not 32 MB of zeros
            self.layer.posedirs = torch.zeros((), dtype=dtype).expand(self.layer.posedirs.shape)

    @property
    def num_vertices(self) -> int:
        return int(self.layer.v_template.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.layer.v_template.dtype

    def _prepare(self, global_orient, body_pose, betas, transl):
        B = max(len(x) for x in (global_orient, body_pose, betas, transl) if x is not None)
        dt, dev = self.dtype, self.layer.v_template.device
        go = _rotmats(torch.as_tensor(global_orient, dtype=dt, device=dev), 1).expand(B, 1, 3, 3)
        bp = _rotmats(torch.as_tensor(body_pose, dtype=dt, device=dev), NUM_JOINTS - 1).expand(B, -1, 3, 3)
        betas = torch.zeros(B, NUM_BETAS, dtype=dt, device=dev) if betas is None else torch.as_tensor(betas, dtype=dt, device=dev)
        transl = torch.zeros(B, 3, dtype=dt, device=dev) if transl is None else torch.as_tensor(transl, dtype=dt, device=dev)
        return torch.cat([go, bp], 1), betas.expand(B, -1), transl.expand(B, 3)

    def forward(self, global_orient, body_pose, betas=None, transl=None) -> BodyOutput:
        """Full skinning: vertices ``(B, V, 3)`` and the 24 joints ``(B, 24, 3)`` in the world frame."""
        rot, betas, transl = self._prepare(global_orient, body_pose, betas, transl)
        L = self.layer
        verts, joints = lbs(betas, rot, L.v_template, L.shapedirs, L.posedirs, L.J_regressor, L.parents,
                            L.lbs_weights, pose2rot=False)
        t = transl[:, None]
        return BodyOutput(vertices=verts + t, joints=joints[:, :NUM_JOINTS] + t)

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """``(B, 10)`` -> ``(B, 24, 3)`` joints of the shaped body in its rest (T) pose."""
        betas = torch.as_tensor(betas, dtype=self.dtype)
        return self.J_template + torch.einsum("jcb,nb->njc", self.J_shapedirs, betas)

    def points(self, global_orient, body_pose, betas=None, transl=None, vertex_ids=None):
        """Fast path: the 24 joints ``(B, 24, 3)`` and selected surface vertices ``(B, K, 3)``.

        Skins only the ``vertex_ids`` (a ``(K,)`` index array) instead of the whole mesh; equal to
        :meth:`forward` to float precision.
        """
        rot, betas, transl = self._prepare(global_orient, body_pose, betas, transl)
        J_rest = self.rest_joints(betas)
        joints, A = batch_rigid_transform(rot, J_rest, self.parents, dtype=self.dtype)
        t = transl[:, None]
        if vertex_ids is None or len(vertex_ids) == 0:
            return joints + t, joints.new_zeros(len(joints), 0, 3)
        L = self.layer
        idx = torch.as_tensor(np.asarray(vertex_ids), dtype=torch.long, device=joints.device)
        v = L.v_template[idx] + torch.einsum("kcb,nb->nkc", L.shapedirs[idx], betas)
        if self.has_posedirs:
            eye = torch.eye(3, dtype=self.dtype, device=rot.device)
            pose_feature = (rot[:, 1:] - eye).reshape(len(rot), -1)
            cols = (idx[:, None] * 3 + torch.arange(3, device=idx.device)).reshape(-1)
            v = v + (pose_feature @ L.posedirs[:, cols]).reshape(len(rot), -1, 3)
        T = torch.einsum("kj,njab->nkab", L.lbs_weights[idx], A)
        v = (T[..., :3, :3] @ v[..., None])[..., 0] + T[..., :3, 3]
        return joints + t, v + t


def in_chunks(fn, frames: int, *args, chunk: int = 1024):
    """``fn(*args)`` over ``chunk`` frames at a time, without gradients; tensor results concatenated along frames.

    Arguments whose first axis has ``frames`` entries are sliced, the others (betas ``(1, 10)``, keypoint specs)
    passed whole. Why: posing a long take at once holds ``(F, K, 4, 4)`` skinning transforms, over 1 GB for
    18,000 frames of 1,000 vertices.
    """
    def part(a, s):
        return a[s:s + chunk] if hasattr(a, "shape") and len(a.shape) and a.shape[0] == frames else a

    with torch.no_grad():
        parts = [fn(*(part(a, s) for a in args)) for s in range(0, frames, chunk)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p) for p in zip(*parts))
    return torch.cat(parts)


def load_body(spec: str | os.PathLike = "open", gender: str = "neutral", dtype: torch.dtype = torch.float32) -> BodyModel:
    """Load a body model.

    Args:
        spec: ``"open"`` for the bundled body; ``"smpl"`` for the SMPL files in ``$MOCAP_SMPL_DIR``; or a path
            to an SMPL folder or to one ``.pkl``/``.npz`` file in SMPL's format.
        gender: ``neutral``, ``male`` or ``female`` (the bundled body is neutral only).
    """
    body = load_body_arrays(spec, gender)
    return BodyModel(body.data, body.name, body.topology, gender, dtype)
