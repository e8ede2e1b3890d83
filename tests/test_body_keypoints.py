"""Detector keypoints and mocap markers on the open body and on SMPL's topology (the fake SMPL)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mocap.body.keypoints import (BLAZEPOSE_OPEN_BODY_SHIN, KEYPOINT_NAMES, along_bones, body_keypoints, keypoint_spec,
                                  marker_vertex_ids)
from mocap.body.model import JOINT_NAMES, load_body
from mocap.errors import InputDataError

J = {name: i for i, name in enumerate(JOINT_NAMES)}


@pytest.fixture(scope="module")
def open_body():
    return load_body("open", dtype=torch.float64)


@pytest.fixture(scope="module")
def smpl_body(shared_dir):
    return load_body(shared_dir / "refit_reference" / "fake_smpl.npz", dtype=torch.float64)


@pytest.fixture(params=["open", "smpl"])
def body(request):
    return request.getfixturevalue(f"{request.param}_body")


@pytest.mark.parametrize("fmt", sorted(KEYPOINT_NAMES))
def test_specs_have_valid_indices(body, fmt):
    spec = keypoint_spec(body, fmt)
    K = len(KEYPOINT_NAMES[fmt])
    assert K == {"blazepose33": 33, "coco17": 17, "coco18": 18, "body25": 25}[fmt]
    assert spec.names == KEYPOINT_NAMES[fmt] and spec.format == fmt
    for arr in (spec.joint_index, spec.vertex_index, spec.weights):
        assert arr.shape == (K,)
    is_joint = spec.joint_index >= 0
    assert np.all(is_joint != (spec.vertex_index >= 0))  # exactly one of the two
    assert spec.joint_index.max() < 24 and spec.joint_index.min() >= -1
    assert spec.vertex_index.max() < body.num_vertices and spec.vertex_index.min() >= -1
    assert np.all(spec.weights >= 0) and spec.weights.max() == 1.0


def test_unknown_format_is_refused(open_body):
    with pytest.raises(InputDataError):
        keypoint_spec(open_body, "halpe26")


@pytest.mark.parametrize("fmt", sorted(KEYPOINT_NAMES))
def test_body_keypoints_equal_full_forward(body, fmt):
    spec = keypoint_spec(body, fmt)
    g = torch.Generator().manual_seed(3)
    args = (torch.randn(3, 3, generator=g, dtype=torch.float64), 0.4 * torch.randn(3, 23, 3, generator=g, dtype=torch.float64),
            torch.randn(3, 10, generator=g, dtype=torch.float64), torch.randn(3, 3, generator=g, dtype=torch.float64))
    kp = body_keypoints(body, spec, *args)
    full = body.forward(*args)
    expected = torch.where(torch.as_tensor(spec.joint_index >= 0)[None, :, None],
                           full.joints[:, np.maximum(spec.joint_index, 0)], full.vertices[:, np.maximum(spec.vertex_index, 0)])
    if fmt == "blazepose33" and body.topology == "open":  # its knees and ankles: points of the shin
        for side in ("left", "right"):
            knee, ankle = full.joints[:, J[f"{side}_knee"]], full.joints[:, J[f"{side}_ankle"]]
            for name, f in BLAZEPOSE_OPEN_BODY_SHIN.items():
                expected[:, spec.names.index(f"{side}_{name}")] = knee + f * (ankle - knee)
    else:
        assert along_bones(spec) is None
    assert kp.shape == (3, len(spec.names), 3)
    assert (kp - expected).abs().max() < 1e-6


def test_smpl_vertices_are_smplx_published_ids(smpl_body):
    spec = keypoint_spec(smpl_body, "body25")
    named = dict(zip(spec.names, spec.vertex_index))
    assert named["nose"] == 332 and named["left_eye"] == 2800 and named["right_heel"] == 6787 and named["left_big_toe"] == 3216


def test_smpl_knuckles_are_its_hand_joints(smpl_body):
    spec = keypoint_spec(smpl_body, "blazepose33")
    for side in ("left", "right"):
        for finger in ("pinky", "index", "thumb"):
            k = spec.names.index(f"{side}_{finger}")
            assert spec.joint_index[k] == J[f"{side}_hand"] and spec.weights[k] == 0.2


def test_markers(body, shared_dir):
    ids = marker_vertex_ids(body)
    assert ids.shape == (67,) and len(set(ids.tolist())) == 67
    assert ids.min() >= 0 and ids.max() < body.num_vertices
    if body.topology == "smpl":
        np.testing.assert_array_equal(ids, np.load(shared_dir / "refit_reference" / "smpl_ssm.npy"))


def _rest(body):
    zero = torch.zeros(1, 3, dtype=torch.float64)
    out = body.forward(zero, torch.zeros(1, 23, 3, dtype=torch.float64), None, zero)
    return out.vertices[0].numpy(), out.joints[0].numpy()


def test_open_body_landmarks_are_anatomical(open_body):
    V, Jr = _rest(open_body)
    spec = keypoint_spec(open_body, "blazepose33")
    p = {n: V[v] for n, v in zip(spec.names, spec.vertex_index) if v >= 0}
    head, floor = Jr[J["head"]], V[:, 1].min()
    assert abs(p["nose"][0]) < 0.01 and p["nose"][2] > head[2] + 0.05  # on the midline, in front
    assert p["left_eye"][0] > 0.02 and p["right_eye"][0] < -0.02 and p["left_eye"][1] > p["nose"][1]
    assert p["left_ear"][0] > 0.05 and p["left_ear"][2] < p["left_eye"][2]
    assert p["mouth_left"][1] < p["nose"][1] and p["mouth_left"][0] > p["mouth_right"][0]
    assert p["left_eye_outer"][0] > p["left_eye"][0] > p["left_eye_inner"][0]
    assert spec.joint_index[spec.names.index("left_shoulder")] == J["left_shoulder"]  # BlazePose's lies nearer the joint
    for side, sign in (("left", 1), ("right", -1)):
        ankle = Jr[J[f"{side}_ankle"]]
        assert p[f"{side}_heel"][2] < ankle[2] - 0.03 and p[f"{side}_heel"][1] - floor < 0.04
        assert p[f"{side}_foot_index"][2] > ankle[2] + 0.12 and p[f"{side}_foot_index"][1] - floor < 0.04
        for finger in ("pinky", "index", "thumb"):  # at the knuckles, 6-10 cm from the wrist, not at the tips
            assert 0.06 < np.linalg.norm(p[f"{side}_{finger}"] - Jr[J[f"{side}_wrist"]]) < 0.10
            assert sign * (p[f"{side}_{finger}"][0] - Jr[J[f"{side}_wrist"], 0]) > 0.04
    # The thumb's knuckle is in front of the little finger's: palms down.
    assert p["left_thumb"][2] > p["left_pinky"][2] + 0.02
    # Left and right landmarks mirror each other.
    for name in p:
        if name.startswith("left_"):
            assert np.linalg.norm(p[name] * [-1, 1, 1] - p["right_" + name[5:]]) < 0.01, name


def test_open_body_markers_mirror_and_sit_on_their_segment(open_body):
    import json

    from mocap.body.model import OPEN_BODY_FILE

    V, _ = _rest(open_body)
    with np.load(OPEN_BODY_FILE, allow_pickle=False) as z:
        names = [n.rstrip("?") for n in z["marker_names"].tolist()]
        assert json.loads(z["metadata"].item())["markers"]["vertices"] == z["marker_vertex_ids"].tolist()
    ids = marker_vertex_ids(open_body)
    pos = dict(zip(names, V[ids]))
    pairs = [n for n in names if n.startswith("L") and "R" + n[1:] in pos]
    assert len(pairs) >= 25
    for n in pairs:
        assert np.linalg.norm(pos[n] * [-1, 1, 1] - pos["R" + n[1:]]) < 0.02, n
    assert pos["LFHD"][1] > pos["LCHEECK"][1] and pos["LFHD"][2] > pos["LBHD"][2]
    assert pos["LHEE"][2] < pos["LANK"][2] < pos["LTOE"][2] and pos["LKNE"][0] > pos["LKNI"][0]
    assert pos["C7"][2] < pos["CLAV"][2] and pos["T10"][2] < pos["MBLLY"][2]
