"""Who is who over time: the per-frame groups of `mocap.fitting.association` linked into person tracks in 3D.

Each group of views is triangulated and reduced to a centre (the median of its keypoints, which a left/right
swap does not move). Frame by frame, the groups are matched to the open tracks by the Hungarian method on the
distance along the floor (x, z; y is up) between each track's predicted centre (last centre plus its velocity)
and each group's centre, gated by how far a person can walk since the track was last seen. Along the floor,
because the height of the centre follows which keypoints the views see (on the real two-person sample it moves
by up to 0.6 m when the legs are hidden), while people stand apart on the floor; so people crossing keep their ids, and a person
hidden from every view for a moment keeps theirs. A group no track takes starts a track; a track unseen for
``max_gap`` seconds ends. Tracks shorter than ``min_track_frames`` are dropped, and two tracks that are one
person followed twice (a chance group of two views started the second, `_stitch`) are joined. Ids are numbered by how much
they are seen (views times frames), so person 0 is the main subject by default.

Shapes: ``F`` frames, ``V`` views, ``P`` detection slots per view, ``N`` people.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mocap.cameras import CameraRig
from mocap.fitting.association import AssociationConfig, cluster_frame, pair_distances, usable
from mocap.fitting.triangulation import triangulate
from mocap.io.keypoints_h5 import Detections2D, Keypoints2D

#: Why a view does or does not serve a person in a frame (`Association.view_reasons`).
VIEW_REASONS = ("used", "not_detected", "too_few_keypoints", "other_person", "disagrees", "not_tracked",
                "far_from_fit")
#: What became of each detection slot (`Association.status`).
DETECTION_STATUS = ("empty", "person", "too_few_keypoints", "alone")


@dataclass(frozen=True)
class Association:
    """The people of a session: which detection slot is whom, per frame and view."""

    cameras: tuple[str, ...]  # (V,)
    person: np.ndarray  # (F, V, P) int: person id of each detection slot, -1 for none
    status: np.ndarray  # (F, V, P) uint8: index into DETECTION_STATUS
    centers: np.ndarray  # (N, F, 3) each person's centre, metres; NaN where fewer than two views see them
    fps: float

    @property
    def num_people(self) -> int:
        return len(self.centers)

    def slots(self, person: int) -> np.ndarray:
        """``(F, V)`` the slot holding ``person`` in each frame and view, -1 for none (`Detections2D.pick`)."""
        mine = self.person == person
        return np.where(mine.any(-1), np.argmax(mine, -1), -1)

    def span(self, person: int) -> tuple[int, int]:
        """First and last frame (inclusive) of the person's track."""
        seen = np.flatnonzero((self.person == person).any((1, 2)))
        return int(seen[0]), int(seen[-1])

    def views_seen(self, person: int) -> np.ndarray:
        """``(F,)`` number of views whose detection is the person."""
        return (self.person == person).any(-1).sum(-1)

    def view_reasons(self, person: int) -> np.ndarray:
        """``(F, V)`` uint8 index into `VIEW_REASONS`: used; not detected (the view found nobody);
        too few keypoints; other person (each of the view's detections is someone else); disagrees (the view
        holds a detection that agrees with no other view: a person only it sees, or a false detection);
        not tracked (outside the person's track). The fit adds far from fit (`mocap.fitting.people.far_views`)."""
        code = {name: np.uint8(i) for i, name in enumerate(VIEW_REASONS)}
        st = self.status
        out = np.full(st.shape[:2], code["not_detected"], np.uint8)
        out[(st == DETECTION_STATUS.index("too_few_keypoints")).any(-1)] = code["too_few_keypoints"]
        out[((self.person >= 0) & (self.person != person)).any(-1)] = code["other_person"]
        out[(st == DETECTION_STATUS.index("alone")).any(-1)] = code["disagrees"]
        out[(self.person == person).any(-1)] = code["used"]
        first, last = self.span(person)
        out[:first], out[last + 1:] = code["not_tracked"], code["not_tracked"]
        return out

    def main_person(self) -> int:
        """The person seen by the most views for the most frames (id 0 by construction)."""
        return int(np.argmax([self.views_seen(n).sum() for n in range(self.num_people)]))

    def keypoints(self, det: Detections2D, person: int) -> Keypoints2D:
        """The person's detections, one per view: ``det.pick(self.slots(person))``."""
        return det.pick(self.slots(person))


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    groups: list[dict[int, int]] = field(default_factory=list)
    centers: list[np.ndarray] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def predict(self, frame: int) -> np.ndarray:
        return self.centers[-1] + self.velocity * (frame - self.frames[-1])

    def distance(self, frame: int, center: np.ndarray) -> float:
        """Floor distance (x, z) from the predicted centre at ``frame`` to ``center``."""
        return float(np.linalg.norm((self.predict(frame) - center)[[0, 2]]))

    def add(self, frame: int, group: dict[int, int], center: np.ndarray) -> None:
        if self.frames:
            step = (center - self.centers[-1]) / max(frame - self.frames[-1], 1)
            self.velocity = step if len(self.frames) == 1 else 0.5 * self.velocity + 0.5 * step
        self.frames.append(frame)
        self.groups.append(group)
        self.centers.append(center)


def _center(det: Detections2D, rig: CameraRig, f: int, group: dict[int, int], cfg: AssociationConfig) -> np.ndarray:
    """The median of the group's triangulated keypoints, ``(3,)``; NaN when none triangulates."""
    return _centers(det, rig, [(f, group)], cfg)[0]


def _centers(det: Detections2D, rig: CameraRig, groups: list[tuple[int, dict[int, int]]],
             cfg: AssociationConfig, chunk: int = 1024) -> np.ndarray:
    """`_center` of each (frame, group), ``(N, 3)``: triangulated together, ``chunk`` groups at a time (each
    point is solved on its own, so the same numbers as one by one, at a small part of the cost)."""
    V, K = len(rig), len(det.names)
    out = np.full((len(groups), 3), np.nan)
    for s in range(0, len(groups), chunk):
        part = groups[s:s + chunk]
        uv, conf = np.full((len(part), V, K, 2), np.nan), np.zeros((len(part), V, K))
        for n, (f, group) in enumerate(part):
            for v, p in group.items():
                kp = det.keypoints[f, v, p].astype(np.float64)
                good = np.nan_to_num(kp[:, 2]) >= cfg.min_confidence
                uv[n, v, good], conf[n, v, good] = kp[good, :2], kp[good, 2]
        X, _ = triangulate(rig, uv, conf, max_error=0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a group none of whose points triangulates: NaN
            out[s:s + len(part)] = np.nanmedian(X, 1)
    return out


def _merge_close(det, rig, f, groups, centers, cfg):
    """Groups of disjoint views whose centres nearly coincide are one person split by a noisy pair."""
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                apart = np.linalg.norm((centers[i] - centers[j])[[0, 2]])  # along the floor, as the tracking
                if set(groups[i]) & set(groups[j]) or not apart < cfg.merge_distance:
                    continue
                groups[i] = {**groups[i], **groups.pop(j)}
                centers.pop(j)
                centers[i] = _center(det, rig, f, groups[i], cfg)
                merged = True
                break
            if merged:
                break
    return groups, centers


def _frame_groups(det: Detections2D, rig: CameraRig, cfg: AssociationConfig):
    """Per frame: the groups of views (``{view: slot}``) and their centres ``(3,)``."""
    dist = pair_distances(det, rig, cfg)
    ok = usable(det, cfg)
    groups = [cluster_frame(dist[f], ok[f], cfg.max_ray_distance) for f in range(det.num_frames)]
    flat = [(f, g) for f, frame in enumerate(groups) for g in frame]
    centers = iter(_centers(det, rig, flat, cfg))
    out = []
    for f, frame in enumerate(groups):
        found = [(g, c) for g, c in ((g, next(centers)) for g in frame) if np.isfinite(c).all()]
        out.append(_merge_close(det, rig, f, [g for g, _ in found], [c for _, c in found], cfg))
    return out


def _link(per_frame, cfg: AssociationConfig, fps: float) -> list[_Track]:
    """Tracks from the per-frame groups: Hungarian matching on predicted centres, gated by walking speed.
    A track is kept when it lasts ``min_track_frames`` frames, or every frame where anyone is seen when there
    are fewer (a short take)."""
    tracks: list[_Track] = []
    max_gap = max(1, int(round(cfg.max_gap * fps)))
    for f, (groups, centers) in enumerate(per_frame):
        open_ = [t for t in tracks if f - t.frames[-1] <= max_gap]
        taken = set()
        if open_ and groups:
            cost = np.array([[t.distance(f, c) for c in centers] for t in open_])
            gate = np.array([cfg.gate + cfg.max_speed * (f - t.frames[-1]) / fps for t in open_])[:, None]
            big = 1e6
            rows, cols = linear_sum_assignment(np.where(cost < gate, cost, big))
            for r, c in zip(rows, cols):
                if cost[r, c] < gate[r, 0]:
                    open_[r].add(f, groups[c], centers[c])
                    taken.add(c)
        for c in range(len(groups)):
            if c not in taken:
                t = _Track()
                t.add(f, groups[c], centers[c])
                tracks.append(t)
    seen = sum(1 for groups, _ in per_frame if groups)
    return [t for t in tracks if len(t.frames) >= min(cfg.min_track_frames, seen)]


def _stitch(tracks: list[_Track], cfg: AssociationConfig, fps: float, near: int = 3) -> list[_Track]:
    """Join tracks that are one person followed twice. A chance group of two views beside a person starts a
    second track, and the person's groups can then alternate between the two: on the real two-person sample
    the man's centre moves 0.3 m with or without the view whose detection of him is half the woman's, so each
    track took the groups nearer its own last centre. Two tracks are one when they share at most two frames
    (or 5 % of the shorter) and, wherever one is seen within ``near`` frames of the other, their centres lie
    within the tracking gate along the floor. In a shared frame the group of more views is kept."""
    out: list[_Track] = []
    for t in sorted(tracks, key=lambda t: -len(t.frames)):
        kept = next((k for k in out if _one_person(k, t, cfg, fps, near)), None)
        if kept is None:
            out.append(t)
        else:
            _absorb(kept, t)
    return out


def _one_person(a: _Track, b: _Track, cfg: AssociationConfig, fps: float, near: int) -> bool:
    if len(set(a.frames) & set(b.frames)) > max(2, 0.05 * min(len(a.frames), len(b.frames))):
        return False
    fa, ca = np.array(a.frames), np.array(a.centers)[:, [0, 2]]
    fb, cb = np.array(b.frames), np.array(b.centers)[:, [0, 2]]
    right = np.clip(np.searchsorted(fa, fb), 0, len(fa) - 1)  # a's frames are in order: its nearest to each of b's
    left = np.clip(right - 1, 0, len(fa) - 1)
    i = np.where(np.abs(fa[left] - fb) <= np.abs(fa[right] - fb), left, right)
    dt = np.abs(fa[i] - fb)
    meet = dt <= near
    apart = np.linalg.norm(cb[meet] - ca[i[meet]], axis=-1)
    return bool(meet.sum() >= min(3, len(fb)) and (apart < cfg.gate + cfg.max_speed * dt[meet] / fps).all())


def _absorb(a: _Track, b: _Track) -> None:
    """Track ``a`` takes ``b``'s frames; where both have one, the group of more views."""
    by_frame = {f: (g, c) for f, g, c in zip(a.frames, a.groups, a.centers)}
    for f, g, c in zip(b.frames, b.groups, b.centers):
        if f not in by_frame or len(g) > len(by_frame[f][0]):
            by_frame[f] = (g, c)
    a.frames = sorted(by_frame)
    a.groups = [by_frame[f][0] for f in a.frames]
    a.centers = [by_frame[f][1] for f in a.frames]


def associate(det: Detections2D, rig: CameraRig, cfg: AssociationConfig = AssociationConfig()) -> Association:
    """Find the people of ``det`` (views in ``rig``'s order) and give each a track over the frames."""
    if tuple(det.cameras) != tuple(rig.names):
        raise ValueError(f"detections cameras {det.cameras} do not match the rig's {tuple(rig.names)}")
    tracks = _stitch(_link(_frame_groups(det, rig, cfg), cfg, det.fps), cfg, det.fps)
    tracks.sort(key=lambda t: (-sum(len(g) for g in t.groups), t.frames[0]))
    F, V, P = det.scores.shape
    person = np.full((F, V, P), -1, np.int64)
    centers = np.full((len(tracks), F, 3), np.nan)
    for n, t in enumerate(tracks):
        for f, g, c in zip(t.frames, t.groups, t.centers):
            for v, p in g.items():
                person[f, v, p] = n
            centers[n, f] = c
    status = np.zeros((F, V, P), np.uint8)
    status[det.present] = DETECTION_STATUS.index("too_few_keypoints")
    status[usable(det, cfg)] = DETECTION_STATUS.index("alone")
    status[person >= 0] = DETECTION_STATUS.index("person")
    return Association(tuple(det.cameras), person, status, centers, float(det.fps))
