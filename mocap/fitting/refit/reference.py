"""Equivalence with the official ReFit code on the reference data (``shared/refit_reference/``).

Not used at run time: the equivalence test and ``benchmarks/refit_equivalence.py`` build the network with the
closed-form weight recipe ``refit-sinfill-v1`` (the reference folder's SPEC_WEIGHTS.md), the fake SMPL body
and mean parameters, run the golden inputs, and compare every recorded tensor with the official outputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from mocap.errors import InputDataError

from .crop import CropGeometry
from .model import Refit
from .multiview import reference_merge

__all__ = ["recipe_value", "recipe_state_dict", "build_reference_model", "run_golden", "compare_golden",
           "load_layout", "GOLDEN_FILES"]

GOLDEN_FILES = {("w48", "single"): "golden_single_view.npz", ("w48", "multi"): "golden_multi_view.npz",
                ("w32", "single"): "golden_single_view_hrnet_w32.npz", ("w32", "multi"): "golden_multi_view_hrnet_w32.npz"}
_MULT_DEFAULT = {4: 0.4, 2: 1.0, 3: 1.0}  # by weight rank: conv, linear, multi-head linear
_MULT_NAME = {"backbone.conv1.weight": 30.0, "flow_layer.weight": 100.0, "local_layer.weight": 10.0,
              "regressor.decpose.weight": 0.1, "regressor.decshape.weight": 0.1, "regressor.deccam.weight": 0.02}
_KEPT_PREFIXES = ("smpl", "smpl_male", "smpl_female")


def load_layout(reference_dir: Path, backbone: str) -> list[dict]:
    path = Path(reference_dir) / f"checkpoint_layout_hrnet_{backbone}.json"
    if not path.is_file():
        raise InputDataError(f"{path}: reference layout not found")
    return json.loads(path.read_text())


def recipe_value(k: int, name: str, shape: tuple[int, ...], names: set[str]) -> np.ndarray | None:
    """The recipe's float32 value of state-dict entry ``k``, or ``None`` where the entry keeps its file value."""
    prefix, _, leaf = name.rpartition(".")
    if name in ("init_pose", "init_shape", "init_cam") or leaf == "num_batches_tracked" \
            or name.split(".")[0] in _KEPT_PREFIXES:
        return None
    n = int(np.prod(shape)) if shape else 1
    s = np.sin(0.7 * np.arange(n, dtype=np.float64) + 1.3 * k + 0.1)
    if prefix + ".running_mean" in names:
        v = {"weight": 1.0 + 0.1 * s, "bias": 0.05 * s, "running_mean": 0.05 * s,
             "running_var": 1.0 + 0.5 * (1.0 + s) / 2.0}[leaf]
    elif leaf == "bias":
        v = 0.005 * s
    else:
        fan_in = shape[1] * shape[2] * shape[3] if len(shape) == 4 else shape[-1]
        v = (_MULT_NAME.get(name, _MULT_DEFAULT[len(shape)]) / math.sqrt(fan_in)) * s
    return v.astype(np.float32).reshape(shape)


def recipe_state_dict(layout: list[dict]) -> dict[str, torch.Tensor]:
    """Recipe tensors for every recipe-filled entry; aliased entries take their last name's value."""
    names = {e["name"] for e in layout}
    out = {}
    for e in layout:
        src = layout[e.get("value_from_index", e["index"])]
        v = recipe_value(src["index"], src["name"], tuple(src["shape"]), names)
        if v is not None:
            out[e["name"]] = torch.from_numpy(v)
    return out


def build_reference_model(reference_dir: Path, backbone: str = "w48") -> Refit:
    """The network with recipe weights, the fake SMPL body, its extra-joint regressor and mean parameters."""
    from mocap.body.model import load_body

    ref = Path(reference_dir)
    model = Refit(backbone)
    missing, unexpected = model.load_state_dict(recipe_state_dict(load_layout(ref, backbone)), strict=False)
    if unexpected:
        raise InputDataError(f"recipe entries the model lacks: {unexpected[:5]}")
    model.set_body(load_body(ref / "fake_smpl.npz"), np.load(ref / "J_regressor_extra.npy"))
    with np.load(ref / "smpl_mean_params.npz") as mp:
        for key, name in (("pose", "init_pose"), ("shape", "init_shape"), ("cam", "init_cam")):
            getattr(model, name).copy_(torch.from_numpy(mp[key].astype(np.float32))[None])
    return model.eval()


def _stack(trace: dict, key: str) -> np.ndarray:
    return torch.stack(trace[key]).numpy()


def run_golden(model: Refit, golden, backbone_out: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> dict[str, np.ndarray]:
    """Run a golden file's inputs; returns our value of every golden key we reproduce.

    ``backbone_out``: :meth:`Refit.encode` of ``golden["in_img"]`` when already computed (the first two
    multi-view crops equal the single-view ones, so one backbone pass serves both files).
    """
    t = lambda k: torch.from_numpy(np.asarray(golden[k]))  # noqa: E731
    geom = CropGeometry(t("in_center"), t("in_scale"), t("in_img_focal"), t("in_img_center"))
    merge = reference_merge(t("in_cam_R")) if "in_cam_R" in golden.files else None
    with torch.no_grad():
        feature, z = model.encode(t("in_img")) if backbone_out is None else backbone_out
        trace: dict = {"backbone_feature": [feature], "backbone_z": [z]}
        out = model.refine(feature, z, geom, iters=int(golden["iters"]), merge=merge, trace=trace)
    feat, corr = trace["backbone_feature"][0], trace["corr_full"][0]
    ours = {"bbox_info": trace["bbox_info"][0].numpy(), "backbone_z": trace["backbone_z"][0].numpy(),
            "init_layer_out": trace["init_layer_out"][0].numpy(), "corr_full": corr.numpy()}
    for name, x in (("backbone_feature", feat), ("corr", corr)):
        x64 = x.double()
        ours[f"{name}_sub8"] = x[:, :, ::8, ::8].numpy()
        ours[f"{name}_sum"], ours[f"{name}_mean"] = x64.sum().numpy(), x64.mean().numpy()
        ours[f"{name}_std"] = x64.std(correction=0).numpy()
        ours[f"{name}_shape"] = np.array(x.shape, dtype=np.int64)
    ours["backbone_feature_chanmean"] = feat.double().mean((-2, -1)).numpy()
    for key in ("p2d", "window", "flow_out", "local_out", "update_x_loc", "hpose", "hshape", "hcam", "d_pose",
                "d_shape", "d_cam", "pred_pose6d", "pred_rotmat", "pred_shape", "pred_cam", "pred_j3d", "pred_j2d"):
        ours[f"{key}_iter"] = _stack(trace, key)
    ours["p2d_it0"] = ours["p2d_iter"][0]
    ours["window_it0_first5"] = ours["window_iter"][0][:, :5]
    ours.update(final_pred_rotmat=out.rotmat.numpy(), final_pred_pose6d=out.pose6d.numpy(),
                final_pred_shape=out.betas.numpy(), final_pred_cam=out.cam.numpy(),
                final_trans_full=out.translation[:, None].numpy(), final_vertices=out.vertices.numpy())
    ours.update(marker_vertex_ids=model.markers.numpy(), joint_map=model.smpl.joint_map.numpy(),
                smplx_extra_joint_vertex_ids=model.smpl.vertex_joint_selector.extra_joints_idxs.numpy())
    return {k: v for k, v in ours.items() if k in golden.files}


def compare_golden(ours: dict[str, np.ndarray], golden) -> dict[str, float]:
    """``max|ours - golden| / max|golden|`` for every key of ``ours`` (exact match required for integer keys)."""
    errors = {}
    for key, value in ours.items():
        g = np.asarray(golden[key])
        if value.shape != g.shape:
            errors[key] = math.inf
            continue
        if g.dtype.kind in "iu":
            errors[key] = 0.0 if np.array_equal(value, g) else math.inf
            continue
        scale = float(np.max(np.abs(g))) or 1.0
        errors[key] = float(np.max(np.abs(value.astype(np.float64) - g.astype(np.float64)))) / scale
    return errors
