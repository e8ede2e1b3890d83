"""Keypoint layouts the detect stage reads and writes, and conversion between them.

Names are snake_case and shared across layouts for the same anatomical point (``left_shoulder`` is the
same name in every layout), so converting is a lookup by name, plus a few points that one layout
derives from two others (OpenPose's ``neck`` and ``mid_hip``). The layouts themselves live in the core
module :mod:`mocap.keypoint_formats`, shared with the body module.
"""

from __future__ import annotations

import numpy as np

from mocap.errors import InputDataError
from mocap.keypoint_formats import names_of

#: The OpenPose JSON layouts, by number of points per person (33: BlazePose's landmarks in OpenPose's JSON, as
#: Pose2Sim's BlazePose skeleton reads them).
OPENPOSE_LAYOUTS = {25: "body25", 18: "coco18", 33: "blazepose33"}

# Same anatomical point under another name, both ways (BlazePose's foot index is the tip of the big toe).
_ALIASES = {"left_big_toe": "left_foot_index", "right_big_toe": "right_foot_index"}
_ALIASES |= {v: k for k, v in _ALIASES.items()}
# Points a layout lacks but can take as the midpoint of two others.
_MIDPOINTS = {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}


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
