"""Small synthetic multi-view sessions for the fitting tests: a body in motion, projected into a ring of cameras."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mocap.body.model import JOINT_NAMES, OPEN_BODY_FILE, load_body
from mocap.cameras import Camera, CameraRig
from mocap.fitting.params import BodyParams
from mocap.fitting.solver import BodyPoints
from mocap.io.keypoints_h5 import Keypoints2D
from mocap.rotations import axis_angle_to_matrix

# ../shared beside the checkout; MOCAP_SHARED points elsewhere (e.g. from a git worktree).
SHARED = Path(os.environ.get("MOCAP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FAKE_SMPL = SHARED / "refit_reference" / "fake_smpl.npz"


def body_spec() -> str:
    """``open`` (the bundled body), or the fake SMPL of ../shared until the bundled one exists; skip without either."""
    if OPEN_BODY_FILE.is_file():
        return "open"
    if FAKE_SMPL.is_file():
        return str(FAKE_SMPL)
    pytest.skip("no body model available")


def joints_spec():
    """Keypoints = the 24 SMPL joints, a detector format that needs no surface points."""
    return SimpleNamespace(format="smpl24", names=JOINT_NAMES, joint_index=np.arange(24),
                           vertex_index=-np.ones(24, dtype=np.int64), weights=np.ones(24))


def ring_rig(V: int = 4, radius: float = 4.0, height: float = 1.5) -> CameraRig:
    """``V`` cameras on a circle around the origin looking at (0, 1, 0); y up."""
    cams = []
    for v in range(V):
        a = 2 * np.pi * v / V + 0.3
        C = np.array([radius * np.sin(a), height, radius * np.cos(a)])
        z = np.array([0, 1.0, 0]) - C
        z /= np.linalg.norm(z)
        x = np.cross([0, -1.0, 0], z)
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        cams.append(Camera(f"cam{v}", [[1000, 0, 640], [0, 1000, 360], [0, 0, 1]], [0.02, -0.01, 0, 0, 0], R, -R @ C, (1280, 720)))
    return CameraRig(tuple(cams))


def motion(F: int, seed: int = 0) -> BodyParams:
    """A smooth random motion near the origin: sums of slow sinusoids on every joint angle."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(F, dtype=torch.float32)[:, None, None] / 30.0
    amp, freq, phase = torch.rand(3, 24, 3, generator=g)
    aa = 0.35 * amp * torch.sin(2 * np.pi * (0.3 + freq) * t + 6.28 * phase)
    aa[:, 0] = aa[:, 0] + torch.tensor([0.0, 1.0, 0.0]) * t[:, 0] * 0.5  # turning around
    aa[:, 4:6, 0] = aa[:, 4:6, 0].abs()  # knees bend forwards
    betas = 0.8 * torch.randn(1, 10, generator=g).expand(F, 10)
    transl = torch.cat([0.3 * torch.sin(t[:, 0]), 0.9 + 0.02 * torch.sin(3 * t[:, 0]), 0.3 * torch.cos(t[:, 0])], 1)
    return BodyParams.from_rotations(axis_angle_to_matrix(aa), betas, transl)


def keypoints(body, spec, truth: BodyParams, rig: CameraRig, noise: float = 0.0, seed: int = 0) -> Keypoints2D:
    """Project the truth's keypoints into every camera, with Gaussian pixel noise."""
    g = np.random.default_rng(seed)
    X = BodyPoints(body, spec).of(truth).detach().double().numpy()
    uv = rig.project(X[:, None].repeat(len(rig), 1)) + noise * g.standard_normal((len(truth), len(rig), len(spec.names), 2))
    kp = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], -1)
    F, V = kp.shape[:2]
    boxes = np.concatenate([uv.min(2), uv.max(2)], -1)
    return Keypoints2D(tuple(rig.names), kp, boxes, np.ones((F, V), bool), rig.image_sizes, spec.format,
                       tuple(spec.names), 30.0)
