"""The keypoint layouts of 2D detectors: names in each detector's own order.

Core data shared by the detect stage (reading and writing detector files) and the body module (which body
point each keypoint is). Names are snake_case and the same across layouts for the same anatomical point.

Layouts (the ``keypoint_format`` string of ``keypoints2d.h5``):
- ``blazepose33``: MediaPipe BlazePose, in the order of ``mediapipe.solutions.pose.PoseLandmark``.
- ``body25``: OpenPose BODY_25.
- ``coco18``: OpenPose COCO (18 points: COCO-17 plus neck, in OpenPose order).
- ``coco17``: MS-COCO keypoints, in COCO annotation order.
"""

from __future__ import annotations

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


def names_of(fmt: str) -> tuple[str, ...]:
    try:
        return KEYPOINT_NAMES[fmt]
    except KeyError:
        raise InputDataError(f"unknown keypoint format {fmt!r}; known: {', '.join(KEYPOINT_NAMES)}") from None
