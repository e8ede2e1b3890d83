"""Keypoint layouts the detect stage reads and writes, and conversion between them.

Names are snake_case and shared across layouts for the same anatomical point (``left_shoulder`` is the
same name in every layout), so converting is a lookup by name, plus a few points that one layout
derives from two others (OpenPose's ``neck`` and ``mid_hip``). These are the detectors' own definitions;
`mocap.body.keypoints` imports them from here rather than repeating them.

Layouts (the ``keypoint_format`` string of ``keypoints2d.h5``):
- ``blazepose33``: MediaPipe BlazePose, in the order of ``mediapipe.solutions.pose.PoseLandmark``.
- ``body25``: OpenPose BODY_25.
- ``coco18``: OpenPose COCO (18 points: COCO-17 plus neck, in OpenPose order).
- ``coco17``: MS-COCO keypoints, in COCO annotation order.
"""

from __future__ import annotations

import numpy as np

from mocap.errors import InputDataError

# mediapipe's PoseLandmark enum, lower-cased; spelled out so that reading names needs no mediapipe import
# (tests check the two agree).
BLAZEPOSE33 = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
BODY25 = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
    "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
    "right_small_toe", "right_heel",
)
COCO18 = BODY25[:8] + BODY25[9:19]
COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)

KEYPOINT_NAMES: dict[str, tuple[str, ...]] = {
    "blazepose33": BLAZEPOSE33,
    "body25": BODY25,
    "coco18": COCO18,
    "coco17": COCO17,
}
#: The OpenPose JSON layouts, by number of points per person.
OPENPOSE_LAYOUTS = {25: "body25", 18: "coco18"}

# Same anatomical point under another name (BlazePose's foot index is the tip of the big toe).
_ALIASES = {"left_big_toe": "left_foot_index", "right_big_toe": "right_foot_index"}
# Points a layout lacks but can take as the midpoint of two others.
_MIDPOINTS = {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}


def names_of(fmt: str) -> tuple[str, ...]:
    try:
        return KEYPOINT_NAMES[fmt]
    except KeyError:
        raise InputDataError(f"unknown keypoint format {fmt!r}; known: {', '.join(KEYPOINT_NAMES)}") from None


def convert(keypoints: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Re-express keypoints ``(..., K_src, 3)`` (x, y, confidence) in layout ``dst`` ``(..., K_dst, 3)``.

    Points ``dst`` has and ``src`` lacks are NaN with confidence 0; a midpoint takes the smaller
    confidence of its two ends.
    """
    src_names, dst_names = names_of(src), names_of(dst)
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape[-2:] != (len(src_names), 3):
        raise InputDataError(f"keypoints have shape {keypoints.shape}, expected (..., {len(src_names)}, 3) for {src}")
    index = {n: i for i, n in enumerate(src_names)}
    out = np.full(keypoints.shape[:-2] + (len(dst_names), 3), np.nan, dtype=np.float32)
    out[..., 2] = 0.0
    for j, name in enumerate(dst_names):
        name = name if name in index else _ALIASES.get(name, name)
        if name in index:
            out[..., j, :] = keypoints[..., index[name], :]
        elif name in _MIDPOINTS and all(m in index for m in _MIDPOINTS[name]):
            a, b = (keypoints[..., index[m], :] for m in _MIDPOINTS[name])
            out[..., j, :2] = (a[..., :2] + b[..., :2]) / 2
            out[..., j, 2] = np.minimum(a[..., 2], b[..., 2])
    return out
