"""A tiny SMPL-format body for export tests: an independent check of the exporters that needs no asset.

Each joint owns four vertices (a small tetrahedron centred on it, rigidly skinned) and each bone has one vertex
halfway, skinned half to each end, so that a wrong skin weight or bind pose shows as a misplaced vertex.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mocap.body.model import PARENTS
from mocap.io.smpl_npz import SmplSequence

# Roughly SMPL's rest skeleton (metres, y up, facing +z).
REST_JOINTS = np.array([
    [0.0, -0.006, 0.003], [0.068, -0.126, 0.002], [-0.078, -0.126, 0.002], [-0.007, 0.126, -0.006],
    [0.095, -0.508, -0.003], [-0.103, -0.508, -0.003], [-0.008, 0.249, 0.005], [0.089, -0.875, -0.027],
    [-0.095, -0.875, -0.027], [-0.009, 0.326, 0.02], [0.107, -0.929, 0.091], [-0.113, -0.929, 0.091],
    [-0.004, 0.53, -0.004], [0.086, 0.425, 0.0], [-0.094, 0.425, 0.0], [-0.006, 0.623, 0.042],
    [0.202, 0.449, -0.011], [-0.208, 0.449, -0.011], [0.452, 0.432, -0.027], [-0.458, 0.432, -0.027],
    [0.686, 0.44, -0.009], [-0.69, 0.44, -0.009], [0.765, 0.431, -0.009], [-0.77, 0.431, -0.009]])
_TETRA = 0.015 * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)


def write_tiny_body(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    J = len(REST_JOINTS)
    parents = np.array(PARENTS)
    verts = (REST_JOINTS[:, None] + _TETRA).reshape(-1, 3)
    weights = np.repeat(np.eye(J), 4, axis=0)
    mids = [(REST_JOINTS[j] + REST_JOINTS[parents[j]]) / 2 for j in range(1, J)]
    mid_w = np.zeros((J - 1, J))
    for j in range(1, J):
        mid_w[j - 1, j] = mid_w[j - 1, parents[j]] = 0.5
    verts = np.concatenate([verts, mids])
    weights = np.concatenate([weights, mid_w])
    V = len(verts)
    regressor = np.zeros((J, V))
    for j in range(J):
        regressor[j, 4 * j:4 * j + 4] = 0.25
    faces = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    faces = (faces[None] + 4 * np.arange(J)[:, None, None]).reshape(-1, 3)
    # Each mid-bone vertex in a triangle too: importers drop vertices no face uses.
    faces = np.concatenate([faces, [[4 * J + j - 1, 4 * parents[j], 4 * j] for j in range(1, J)]])
    kintree = np.stack([np.where(parents < 0, 2**32 - 1, parents), np.arange(J)])
    np.savez(path, v_template=verts, f=faces, J_regressor=regressor, weights=weights,
             shapedirs=rng.normal(0, 0.005, (V, 3, 10)), posedirs=np.zeros((V, 3, 207)), kintree_table=kintree)
    return path


def random_sequence(num_frames: int, surface_model: str, seed: int = 0, fps: float = 30.0) -> SmplSequence:
    """Smooth but wide motion: the root turns all the way round, joints swing up to about 100 degrees."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    freq = rng.uniform(0.2, 1.5, (24, 3))
    phase = rng.uniform(0, 2 * np.pi, (24, 3))
    poses = 0.9 * np.sin(2 * np.pi * freq * t[:, None, None] + phase)
    poses[:, 0] = np.stack([0.3 * np.sin(t), 2.5 * t, 0.2 * np.cos(t)], 1)  # the root spins past 180 degrees
    trans = np.stack([np.sin(t), 0.9 + 0.05 * np.cos(3 * t), 0.5 * t], 1)
    return SmplSequence(poses=poses, trans=trans, betas=rng.normal(0, 1, 10), gender="neutral", fps=fps,
                        surface_model=surface_model)


def reference_pose(body, seq: SmplSequence, frames) -> tuple[np.ndarray, np.ndarray]:
    """SMPL's own joints ``(N, 24, 3)`` and vertices ``(N, V, 3)`` at ``frames``, from the body layer (smplx)."""
    import torch

    frames = np.asarray(frames)
    with torch.no_grad():
        out = body.forward(torch.as_tensor(seq.global_orient[frames]), torch.as_tensor(seq.body_pose[frames]),
                           torch.as_tensor(seq.betas)[None], torch.as_tensor(seq.trans[frames]))
    return out.joints.double().numpy(), out.vertices.double().numpy()
