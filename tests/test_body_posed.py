"""The numpy posing (mocap.body.posed) against the torch layer it stands in for (smplx's lbs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mocap.body.arrays import BodyArrays, load_body_arrays
from mocap.body.keypoints import body_keypoints, keypoint_spec
from mocap.body.model import BodyModel
from mocap.body.posed import keypoints_of, pose_body, rotvec_to_matrix
from mocap.rotations import axis_angle_to_matrix


@pytest.fixture(scope="module")
def bodies():
    """The bundled body with random pose blend shapes (its own are zero), as arrays and as the float64 layer."""
    data = dict(load_body_arrays("open").data)
    data["posedirs"] = 1e-3 * np.random.default_rng(1).standard_normal(data["posedirs"].shape)
    arrays = BodyArrays(data, "open_body_neutral", "open")
    return arrays, BodyModel(data, arrays.name, arrays.topology, dtype=torch.float64)


def _motion(F=5, seed=0):
    rng = np.random.default_rng(seed)
    poses = 0.5 * rng.standard_normal((F, 24, 3))
    poses[0] = 0  # the rest pose, where the axis is undefined
    return poses, 1.5 * rng.standard_normal(10), rng.standard_normal((F, 3))


def test_rotvec_to_matrix_is_the_torch_conversion():
    r = np.concatenate([np.zeros((1, 3)), 2.0 * np.random.default_rng(2).standard_normal((50, 3))])
    assert np.abs(rotvec_to_matrix(r) - axis_angle_to_matrix(torch.as_tensor(r)).numpy()).max() < 1e-12


def test_posed_vertices_and_joints_are_smplx_lbs(bodies):
    arrays, layer = bodies
    poses, betas, trans = _motion()
    ids = np.arange(0, layer.num_vertices, 7)
    joints, verts = pose_body(arrays, poses, betas, trans, ids)
    with torch.no_grad():
        p = torch.as_tensor(poses)
        out = layer.forward(p[:, 0], p[:, 1:], torch.as_tensor(betas)[None].expand(len(p), -1), torch.as_tensor(trans))
    # The arrays keep the file's float32 rounding; the float64 layer does not: they agree to that rounding.
    assert np.abs(verts - out.vertices[:, ids].numpy()).max() < 1e-5
    assert np.abs(joints - out.joints.numpy()).max() < 1e-5


def test_keypoints_are_the_torch_keypoints(bodies):
    arrays, layer = bodies
    poses, betas, trans = _motion(seed=3)
    spec = keypoint_spec(arrays, "blazepose33")
    joints, verts = pose_body(arrays, poses, betas, trans, spec.vertex_index[spec.joint_index < 0])
    with torch.no_grad():
        p = torch.as_tensor(poses)
        ref = body_keypoints(layer, spec, p[:, 0], p[:, 1:], torch.as_tensor(betas)[None].expand(len(p), -1),
                             torch.as_tensor(trans)).numpy()
    assert np.abs(keypoints_of(spec, joints, verts) - ref).max() < 1e-5
