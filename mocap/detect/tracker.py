"""Several people tracked through one view, each by their own BlazePose graph on a crop around them.

MediaPipe's PoseLandmarker in video mode over the whole frame loses people here: on Pose2Sim's
multi-person demo it kept the second person in 5 % of cam02's frames and none of cam03's, where a
still image of the same frame (image mode) finds both in cam02 and, on square tiles of the frame, in
cam03 too (the person detector sees a 1088 x 1920 frame at 224 x 224; faces become a few pixels).
So tracking is done as BlazePose does it for one person, once per person:

- finding: every ``detect_every`` frames, and whenever a person was lost or nobody is tracked, an
  image-mode PoseLandmarker looks at the whole frame and at square tiles along its long side
  (overlapping; a person up to 60 % of the short side tall lies whole inside one); people it finds
  that no track holds start a track;
- tracking: a track crops the frame around its person (a square 1.5 x the landmarks' longer side, at
  CROP x CROP pixels) and runs a one-person graph on it (`CropGraph`, no landmark filter), which keeps its
  ROI from the last landmarks and runs its detector only when it lost the person; the next crop follows the
  landmarks. The person's segmentation mask comes from the same graph, at the crop's resolution.
- two tracks on one person (people crossing) are merged: the less confident reading is dropped.

A track holds one person slot from start to end, so a slot keeps its person while tracked (a hint for
association; slots still carry no identity across views).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mocap.detect.crops import box_from_keypoints, crop_image
from mocap.detect.people import CropGraph, same_person, duplicates, landmarker

CROP = 512  # pixels of a track's square crop (the landmark model then sees 256 x 256 of it)
RECROP = 0.1  # a crop moves when the person's centre or size moves by this fraction of its side
CROP_MARGIN = 1.5  # crop side over the longer side of the person's landmarks' box
TILE_STRIDE = 0.4  # tiles overlap by 60 % of the short side
NEW_OFFSET = 0.2  # a found person is new when their keypoints lie this far (x box diagonal) from every track's


@dataclass
class _Track:
    slot: int
    graph: CropGraph
    keypoints: np.ndarray = field(default=None)  # (33, 3) image pixels, last frame
    crop: tuple | None = None  # (centre (2,), side) of the crop in frame pixels


def tiles(W: int, H: int) -> list[tuple[int, int, int, int]]:
    """The whole frame and squares of the short side along the long one, x0, y0, x1, y1."""
    S, L = min(W, H), max(W, H)
    n = 1 + int(np.ceil(max(L - S, 0) / (TILE_STRIDE * S)))
    starts = np.rint(np.linspace(0, L - S, n)).astype(int) if L > S else [0]
    squares = [(0, int(s), W, int(s) + S) if H > W else (int(s), 0, int(s) + S, H) for s in starts]
    return [(0, 0, W, H)] + (squares if L > S else [])


def _landmarks(result) -> np.ndarray:
    """Normalised landmarks ``(P, 33, 3)`` x, y, visibility of a PoseLandmarker result."""
    return np.array([[(p.x, p.y, p.visibility) for p in person] for person in result.pose_landmarks],
                    dtype=np.float64).reshape(-1, 33, 3)


def to_frame(kp: np.ndarray, M: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Normalised landmarks ``(..., 33, 3)`` of an image of ``size`` (w, h) that ``M`` (2, 3) maps the frame
    onto (pixel centres at integers on both sides) -> frame pixels, centres at integers (OpenCV's, the
    calibration's and the masks' convention; MediaPipe's normalised coordinates span the image edge to edge)."""
    out = np.array(kp, dtype=np.float64)
    uv = out[..., :2] * np.asarray(size, float) - 0.5  # image pixels, centres at integers
    out[..., :2] = (uv - M[:, 2]) @ np.linalg.inv(M[:, :2]).T
    return out


def crop_extent(M: np.ndarray, res: int) -> np.ndarray:
    """The frame rectangle x0, y0, x1, y1 (edge to edge) that a crop ``res`` x ``res`` with map ``M`` covers."""
    k, b = M[0, 0], M[:, 2]
    lo, hi = (-0.5 - b) / k, (res - 0.5 - b) / k
    return np.array([lo[0], lo[1], hi[0], hi[1]])


def follow_crop(crop: tuple | None, box: np.ndarray) -> tuple[np.ndarray, float]:
    """The crop (centre, side) for a person's landmark box: the last crop while the person stays well inside
    it, else a new one around them. A still crop keeps the graph's ROI tracking in one frame of reference
    (a crop that followed every landmark's jitter fed the jitter back)."""
    centre = (box[:2] + box[2:]) / 2
    side = CROP_MARGIN * max(box[2] - box[0], box[3] - box[1], 16.0)
    if crop is not None:
        c, s = crop
        if np.abs(centre - c).max() < RECROP * s and abs(side / s - 1) < RECROP:
            return c, s
    return centre, side


def fill_box(crop: np.ndarray, box: np.ndarray, M: np.ndarray, source: np.ndarray | None = None) -> None:
    """Black out (or, with ``source``, restore from it) the frame box x0, y0, x1, y1 inside a crop with map ``M``."""
    if not np.isfinite(box).all():
        return
    lo, hi = M[:, :2] @ box[:2] + M[:, 2], M[:, :2] @ box[2:] + M[:, 2]
    pad = 0.05 * (hi - lo)
    (x0, y0), (x1, y1) = np.clip(np.rint(lo - pad), 0, crop.shape[1]).astype(int), np.clip(np.rint(hi + pad), 0, crop.shape[1]).astype(int)
    crop[y0:y1, x0:x1] = 0 if source is None else source[y0:y1, x0:x1]


class PeopleTracker:
    """Call with (RGB frame ``(H, W, 3)`` uint8, frame index) -> keypoints ``(P, 33, 3)``, scores ``(P,)``,
    masks as (map, frame box it covers) per person or [], slots ``(P,)``."""

    def __init__(self, size: tuple[int, int], max_people: int, masks: bool, min_detection: float,
                 min_tracking: float, detect_every: int):
        self.W, self.H = size
        self.max_people, self.masks, self.detect_every = max_people, masks, detect_every
        self.options = (min_detection, min_tracking)
        self.finder = landmarker(max_people, False, min_detection, min_tracking)
        self.tracks: list[_Track] = []
        self.lost = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for t in self.tracks:
            t.graph.close()
        self.finder.close()

    def __call__(self, frame: np.ndarray, f: int):
        results = {}
        for track in list(self.tracks):
            got = self._follow(track, frame)
            if got is None:
                self._end(track)
            else:
                results[track.slot] = got
        self._merge(results)
        if self.lost or not self.tracks or f % self.detect_every == 0:
            self.lost = False
            found = self._find(frame)
            for i, kp in enumerate(found):
                if len(self.tracks) >= self.max_people:
                    break
                self._start(kp, frame, results, found[i + 1:])
        slots = sorted(results)
        kp = np.array([results[s][0] for s in slots]).reshape(-1, 33, 3)
        maps = [results[s][1] or (None, None) for s in slots] if self.masks else []
        return kp, kp[..., 2].mean(-1), maps, np.array(slots, int)

    def _follow(self, track: _Track, frame: np.ndarray, hide: list[np.ndarray] = ()):
        """The track's person in this frame: (keypoints (33, 3), (mask, box) or None), or None when lost.

        ``hide``: keypoints ``(33, 3)`` of other people, blacked out of the crop (outside this person's box)
        so that a new track's detector finds its own person, not a more confident neighbour."""
        box = box_from_keypoints(track.keypoints, 0.0)
        centre, side = follow_crop(track.crop, box)
        track.crop = (centre, side)
        crop, M = crop_image(frame, centre, side / 200.0, CROP)
        if len(hide):
            keep = crop.copy()
            for other in box_from_keypoints(np.array(hide), 0.0):
                fill_box(crop, other, M)
            fill_box(crop, box, M, keep)
        landmarks, mask = track.graph(crop)
        if landmarks is None:
            return None
        kp = to_frame(landmarks, M, (CROP, CROP))
        track.keypoints = kp
        return kp, None if mask is None else (mask, crop_extent(M, CROP))

    def _find(self, frame: np.ndarray) -> list[np.ndarray]:
        """People the finder sees in the frame and its tiles that no track holds, most confident first."""
        import mediapipe as mp

        found = []
        for x0, y0, x1, y1 in tiles(self.W, self.H):
            tile = np.ascontiguousarray(frame[y0:y1, x0:x1])
            result = self.finder.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=tile))
            M = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
            found.extend(to_frame(_landmarks(result), M, (x1 - x0, y1 - y0)))
        if not found:
            return []
        found = np.array(found)
        scores = found[..., 2].mean(-1)
        keep = duplicates(found, scores)
        order = [i for i in np.argsort(-scores) if keep[i]]
        held = [t.keypoints for t in self.tracks]
        return [found[i] for i in order if not any(self._same(found[i], k, NEW_OFFSET) for k in held)]

    @staticmethod
    def _same(a: np.ndarray, b: np.ndarray, offset: float) -> bool:
        boxes = box_from_keypoints(np.stack([a, b]), 0.0)
        return same_person(a, b, boxes[0], boxes[1], offset, 0.7)

    def _start(self, kp: np.ndarray, frame: np.ndarray, results: dict, others: list[np.ndarray]) -> None:
        used = {t.slot for t in self.tracks}
        slot = next(s for s in range(self.max_people + 1) if s not in used)
        track = _Track(slot, CropGraph(self.masks, *self.options), kp)
        got = self._follow(track, frame, [r[0] for r in results.values()] + others)
        if got is not None and any(self._same(got[0], r[0], 0.1) for r in results.values()):
            track.graph.close()  # it locked onto someone tracked
            return
        if got is None:  # its graph missed the person in the crop (often half hidden): the finder's reading, no mask
            got = (kp, None)
        self.tracks.append(track)
        results[slot] = got

    def _end(self, track: _Track) -> None:
        track.graph.close()
        self.tracks.remove(track)
        self.lost = True

    def _merge(self, results: dict) -> None:
        """Two tracks reading one person: end the less confident."""
        if len(results) < 2:
            return
        slots = sorted(results)
        kp = np.array([results[s][0] for s in slots])
        keep = duplicates(kp, kp[..., 2].mean(-1))
        for s, k in zip(slots, keep):
            if not k:
                self._end(next(t for t in self.tracks if t.slot == s))
                del results[s]
