"""Looking again for a person where the other views say they are.

A person behind another is often missed by a view's detector, which reads the one in front (or nobody),
while the other views see them; `mocap.fitting.missed` gives where that person's keypoints should be in the
view. Here the view's frame is cropped around that place, the people the view's detector did find are
blacked out (their boxes, except where the expected person's own box overlaps them), so that the landmark
model is not drawn to the more visible person in front, and one still-image BlazePose reads the crop. A
reading is kept only when it lies where it was expected, and its keypoints far from their expected place
lose their confidence.

On the rendered two-person session (`benchmarks/people.py --render 0.5`), of 73 view-frames missed, plain
crops read the front person in 70; with the others blacked out 48 readings were the missed person, 22 the
other one and 3 none. The right readings lay 0.02-0.07 of the expected box's diagonal from their expected
keypoints (median), the wrong ones 0.11-0.19, which sets `GATE`.

Shapes: ``F`` frames, ``K`` keypoints, ``P`` detection slots.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.detect.blazepose import quiet_stderr
from mocap.detect.crops import box_from_keypoints, crop_image
from mocap.detect.people import CropGraph, same_person
from mocap.detect.tracker import CROP, crop_extent, fill_box, follow_crop, to_frame
from mocap.io.keypoints_h5 import Detections2D
from mocap.io.video import read_frames

GATE = 0.08  # a reading is the person when its keypoints lie within this x the expected box's diagonal (median)
FAR = 0.15  # a keypoint of a kept reading farther than this x the diagonal from its expected place gets confidence 0
MIN_COMMON = 4  # keypoints the reading and the expectation must share to be compared


@dataclass(frozen=True)
class Look:
    """Where to look in one frame: the person's ``expected`` keypoints ``(K, 2)`` pixels (NaN where unknown) and
    the keypoints ``others`` ``(n, K, 3)`` of the people the view's detector found there."""

    frame: int
    expected: np.ndarray
    others: np.ndarray


@dataclass(frozen=True)
class Reading:
    frame: int
    keypoints: np.ndarray  # (K, 3) frame pixels, visibility
    mask: tuple | None  # (probability map, the frame box it covers) for `mocap.detect.masks.person_masks`


def look_again(path: str | Path, looks: list[Look], masks: bool, min_detection: float = 0.5) -> list[Reading]:
    """Read the person of each of ``looks`` in the video or image folder ``path``; the readings that lie where
    they were expected, in frame order."""
    if not looks:
        return []
    by_frame: dict[int, list[Look]] = {}
    for look in looks:
        by_frame.setdefault(look.frame, []).append(look)
    first, last = min(by_frame), max(by_frame)
    out = []
    with quiet_stderr():
        graph = CropGraph(masks, min_detection, min_detection, static=True)
        try:
            for f, frame in enumerate(read_frames(path, first, last + 1, prefetch=2, rgb=True), start=first):
                for look in by_frame.get(f, ()):
                    got = read_person(graph, frame, look)
                    if got is not None:
                        out.append(got)
        finally:
            graph.close()
    return out


def read_person(graph: CropGraph, frame: np.ndarray, look: Look) -> Reading | None:
    """The reading of ``look`` in the RGB ``frame`` ``(H, W, 3)``, or None when the model finds nobody there or
    someone else (or someone the view's detector found)."""
    expected = np.asarray(look.expected, float)
    known = np.isfinite(expected).all(-1)
    if known.sum() < MIN_COMMON:
        return None
    box = np.concatenate([expected[known].min(0), expected[known].max(0)])
    centre, side = follow_crop(None, box)  # the crop a track would take around this person
    crop, M = crop_image(frame, centre, side / 200.0, CROP)
    others = np.asarray(look.others, float).reshape(-1, *expected.shape[:1], 3)
    other_boxes = box_from_keypoints(others, 0.0)
    if len(others):
        keep = crop.copy()
        for other in other_boxes:
            fill_box(crop, other, M)
        fill_box(crop, box, M, keep)
    landmarks, mask = graph(crop)
    if landmarks is None:
        return None
    kp = to_frame(landmarks, M, (CROP, CROP))
    diag = np.hypot(box[2] - box[0], box[3] - box[1])
    dist = np.linalg.norm(kp[:, :2] - np.where(known[:, None], expected, 0.0), axis=-1)
    common = known & (kp[:, 2] >= 0.5)
    if common.sum() < MIN_COMMON or np.median(dist[common]) > GATE * diag:
        return None
    mine = box_from_keypoints(kp, 0.0)
    if any(same_person(kp, o, mine, b, 0.1, 0.7) for o, b in zip(others, other_boxes)):
        return None  # a person the view's detector holds already (the association set them aside)
    kp[known & (dist > FAR * diag), 2] = 0.0
    return Reading(look.frame, kp, None if mask is None else (mask, crop_extent(M, CROP)))


def with_readings(det: Detections2D, view: int, readings: list[Reading]) -> Detections2D:
    """``det`` with ``readings`` of ``view`` in the first empty slots of their frames (more slots when needed),
    flagged in ``guided``; their masks when ``det`` has masks."""
    from mocap.detect.masks import person_masks

    if not readings:
        return det
    F, V, P = det.scores.shape
    free = {}
    slots = []
    for r in readings:
        taken = np.flatnonzero(det.present[r.frame, view])
        s = free.get(r.frame, 0)
        while s in taken:
            s += 1
        free[r.frame] = s + 1
        slots.append(s)
    grow = max(max(slots) + 1 - P, 0)
    pad = lambda a, fill: None if a is None else np.concatenate(  # noqa: E731
        [a, np.full((F, V, grow, *a.shape[3:]), fill, a.dtype)], axis=2)
    kp, boxes, scores = pad(det.keypoints, np.nan), pad(det.boxes, np.nan), pad(det.scores, np.nan)
    masks, mask_boxes = pad(det.masks, 0), pad(det.mask_boxes, np.nan)
    guided = pad(np.zeros((F, V, P), bool) if det.guided is None else det.guided, False)
    for r, s in zip(readings, slots):
        f = r.frame
        kp[f, view, s] = r.keypoints
        boxes[f, view, s] = box_from_keypoints(r.keypoints, 0.0)
        scores[f, view, s] = r.keypoints[:, 2].mean()
        guided[f, view, s] = True
        if masks is not None:
            m, mb = person_masks([r.mask or (None, None)], r.keypoints[None], masks.shape[-1])
            masks[f, view, s], mask_boxes[f, view, s] = m[0], mb[0]
    return dataclasses.replace(det, keypoints=kp, boxes=boxes, scores=scores, masks=masks, mask_boxes=mask_boxes,
                               guided=guided)


def without_guided(det: Detections2D) -> Detections2D:
    """``det`` with the slots that `with_readings` added emptied (for a new look, after views were detected again)."""
    if det.guided is None:
        return det
    gone = det.guided
    kp, boxes, scores = det.keypoints.copy(), det.boxes.copy(), det.scores.copy()
    kp[gone], boxes[gone], scores[gone] = np.nan, np.nan, np.nan
    masks = mask_boxes = None
    if det.masks is not None:
        masks, mask_boxes = det.masks.copy(), det.mask_boxes.copy()
        masks[gone], mask_boxes[gone] = 0, np.nan
    return dataclasses.replace(det, keypoints=kp, boxes=boxes, scores=scores, masks=masks, mask_boxes=mask_boxes,
                               guided=None)
