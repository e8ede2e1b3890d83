"""Which detection in each view is the same person, frame by frame.

The geometric test is the one Pose2Sim's person association and MVPose build on: two views see the same
person when the viewing rays through their keypoints (nearly) meet. For two detections in two views the
affinity is the median, over the keypoints both see confidently, of the closest-approach distance of the two
rays in metres (`pair_distances`); metres rather than pixels so that one threshold serves every lens and
distance. The distance is the smallest over the left/right relabellings of `mocap.fitting.swaps`, so a view
whose detector swapped the person's sides still joins its person (the swap is undone later, per person).

Per frame the detections are grouped greedily (`cluster_frame`): view pairs in order of distance, two groups
merged when they share no view and agree throughout (every cross distance within the threshold, their mean
within 0.6 of it: two views alone can agree by chance, e.g. two people of one height seen by cameras at one
height lie on shared epipolar planes). A group of two views or more is a person candidate; a detection left alone agrees with no other
view: a person only one camera sees, or a false detection. Identities over time: `mocap.fitting.tracking`.

Shapes: ``F`` frames, ``V`` views, ``P`` detection slots per view, ``K`` keypoints, ``S`` relabellings.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np

from mocap.cameras import CameraRig
from mocap.fitting.chunks import by_frames
from mocap.fitting.swaps import swap_orders
from mocap.fitting.triangulation import normalized_coordinates
from mocap.io.keypoints_h5 import Detections2D


@dataclass(frozen=True)
class AssociationConfig:
    """Settings of the association across views and of the tracking over time (``fit: {association: ...}``)."""

    min_confidence: float = 0.5
    """Keypoints below this confidence take no part in the association."""
    min_keypoints: int = 6
    """A detection with fewer confident keypoints is ignored (too little to place it)."""
    min_common: int = 4
    """Two detections are compared only on at least this many keypoints seen confidently by both."""
    max_ray_distance: float = 0.1
    """Same person when the rays through two views' keypoints pass within this median distance, metres.
    Measured on the real 4-camera samples: the same person 1-4 cm; two people 0.05-0.9 m (two views alone
    can agree by chance, which is why a group must agree pair by pair)."""
    max_speed: float = 3.0
    """A person's centre moves along the floor at most this fast, m/s (gates the frame-to-frame match of `tracking`)."""
    gate: float = 0.35
    """Slack of that gate, metres: the centre of a body jitters with the detections and the pose."""
    merge_distance: float = 0.3
    """Two groups of disjoint views whose centres are this close along the floor in one frame are one person."""
    max_gap: float = 1.0
    """A track unseen for longer than this many seconds ends; the person returning gets a new id."""
    min_track_frames: int = 5
    """Shorter tracks are dropped as spurious (chance agreements of false detections)."""
    max_view_error: float = 0.15
    """After the fit, a view whose mean keypoint error in a frame exceeds this (metres at the body) and three
    times the median of the frame's other views is left out of that frame and the person refitted: a detection
    that drifted onto someone else, or a skeleton mixing two people, can pass the test between views."""
    max_keypoint_error: float = 0.10
    """After the fit, a keypoint whose error exceeds this (metres at the keypoint) is left out and the person
    refitted: a skeleton that mixes two people (the real two-person demo: cam03's reading of the man with a
    leg on the hidden woman's) passes the view test when most of it is right. Before the first fit, the same
    distance from where the frames around put a keypoint leaves it out (`mocap.fitting.people.
    implausible_keypoints`). 0 turns both off. The keypoints
    BlazePose sees lie a few centimetres from a good fit; 0.10 m against 0.25 m before: real two-person demo
    LOVO 35.9 -> 33.5 px (the woman) and 26.9 -> 25.2 px (the man), rendered two-person MPJPE 21.3 / 22.5 ->
    22.0 / 15.8 mm, the single-person sample unchanged (README, Several people)."""
    far_passes: int = 3
    """At most this many refits without the views far from the fit. A wrong view drags the first fit towards
    it, raising the other views' errors, so that it can stand out only once another wrong view is gone (on
    the real two-person demo, cam03 holding the hidden person while the others hold the man)."""


def rays(keypoints: np.ndarray, rig: CameraRig) -> tuple[np.ndarray, np.ndarray]:
    """Unit viewing rays through every keypoint ``(F, V, P, K, 3)`` (pixels, confidence) in the world,
    ``(F, V, P, K, 3)`` (NaN where missing), and the camera centres ``(V, 3)``."""
    xy = normalized_coordinates(rig, keypoints[..., :2].astype(np.float64))  # (F, V, P, K, 2)
    h = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1)
    d = np.einsum("vji,fvpkj->fvpki", rig.R, h)  # R^T x: camera to world directions
    return d / np.linalg.norm(d, axis=-1, keepdims=True), rig.centers


def _ray_distance(o1: np.ndarray, d1: np.ndarray, o2: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Closest-approach distance of rays ``o + s d`` (s > 0) broadcast over ``(..., 3)``; a pair meeting only
    behind a camera is infinitely far."""
    w0 = o1 - o2
    b = (d1 * d2).sum(-1)
    dd, e = (d1 * w0).sum(-1), (d2 * w0).sum(-1)
    denom = 1.0 - b * b  # unit directions
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-9, (b * e - dd) / denom, 0.0)
        t = np.where(denom > 1e-9, (e - b * dd) / denom, e)
    gap = np.linalg.norm(w0 + s[..., None] * d1 - t[..., None] * d2, axis=-1)
    return np.where((s > 0) & (t > 0), gap, np.inf)


def pair_distances(det: Detections2D, rig: CameraRig, cfg: AssociationConfig = AssociationConfig(),
                   chunk: int = 1024) -> np.ndarray:
    """``(F, V, P, V, P)`` median ray distance (metres) between every two detections of different views,
    smallest over the left/right relabellings; NaN where the slots are empty or share too few keypoints."""
    orders = swap_orders(tuple(det.names))  # (S, K)
    # chunk frames at a time: the rays and (F, P, P, S, K, 3) ray pairs of a long take at once are hundreds of MB
    F, V, P = det.keypoints.shape[:3]
    return by_frames(lambda f: _pair_distances(det.keypoints[f], rig, orders, cfg), F,
                     np.full((0, V, P, V, P), np.nan), chunk)


def _pair_distances(keypoints: np.ndarray, rig: CameraRig, orders: np.ndarray, cfg: AssociationConfig) -> np.ndarray:
    """`pair_distances` of the detections ``keypoints`` ``(F, V, P, K, 3)``."""
    d, centers = rays(keypoints, rig)
    conf = np.nan_to_num(keypoints[..., 2].astype(np.float64))
    ok = (conf >= cfg.min_confidence) & np.isfinite(d).all(-1)  # (F, V, P, K)
    F, V, P, K, _ = d.shape
    out = np.full((F, V, P, V, P), np.nan)
    for a in range(V):
        for b in range(a + 1, V):
            db = d[:, b][:, :, orders]  # (F, P, S, K, 3): view b relabelled
            okb = ok[:, b][:, :, orders]
            dist = _ray_distance(centers[a], d[:, a][:, :, None, None], centers[b], db[:, None])  # (F, P, P, S, K)
            both = ok[:, a][:, :, None, None] & okb[:, None]
            dist = np.where(both, dist, np.nan)
            with _quiet():
                med = np.nanmedian(dist, axis=-1)  # (F, P, P, S)
            med = np.where(both.sum(-1) >= cfg.min_common, med, np.nan)
            with _quiet():
                best = np.nanmin(med, axis=-1)  # (F, P, P)
            out[:, a, :, b, :] = best
            out[:, b, :, a, :] = best.transpose(0, 2, 1)
    return out


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer wanted
        yield


def usable(det: Detections2D, cfg: AssociationConfig = AssociationConfig()) -> np.ndarray:
    """``(F, V, P)`` detections with at least ``cfg.min_keypoints`` confident keypoints."""
    conf = np.nan_to_num(det.keypoints[..., 2])
    return det.present & ((conf >= cfg.min_confidence).sum(-1) >= cfg.min_keypoints)


def cluster_frame(dist: np.ndarray, ok: np.ndarray, threshold: float) -> list[dict[int, int]]:
    """Groups of one frame's detections, each ``{view: slot}`` with two views or more, best agreeing first.

    Args:
        dist: ``(V, P, V, P)`` pair distances of the frame (NaN: not comparable).
        ok: ``(V, P)`` detections allowed to take part.
    """
    V, P = ok.shape
    nodes = [(v, p) for v in range(V) for p in range(P) if ok[v, p]]
    group = {n: i for i, n in enumerate(nodes)}
    members: dict[int, list[tuple[int, int]]] = {i: [n] for i, n in enumerate(nodes)}
    edges = sorted((dist[a[0], a[1], b[0], b[1]], a, b) for i, a in enumerate(nodes) for b in nodes[i + 1:]
                   if a[0] != b[0] and dist[a[0], a[1], b[0], b[1]] < threshold)
    for _, a, b in edges:
        ga, gb = group[a], group[b]
        if ga == gb or {v for v, _ in members[ga]} & {v for v, _ in members[gb]}:
            continue
        cross = np.array([dist[x[0], x[1], y[0], y[1]] for x in members[ga] for y in members[gb]])
        cross = np.where(np.isfinite(cross), cross, threshold)  # not comparable: neither for nor against
        if cross.max() > threshold or cross.mean() > 0.6 * threshold:
            continue
        for n in members[gb]:
            group[n] = ga
        members[ga] += members.pop(gb)
    out = [dict(m) for m in members.values() if len(m) >= 2]
    score = [np.nanmean([dist[x[0], x[1], y[0], y[1]] for x in g.items() for y in g.items() if x[0] < y[0]] or [0])
             for g in out]
    return [out[i] for i in np.argsort(score, kind="stable")]

