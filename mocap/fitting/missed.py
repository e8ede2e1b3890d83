"""Where a tracked person should be in the views whose detector missed them.

A person standing behind another is often found in some views only: the detector of a view reads the one in
front, or nobody. The views that do see the person fix where they are: their keypoints, triangulated and
projected into a view that missed them, say where to look again (`mocap.detect.guided` reads such places).
On the rendered two-person sessions the projection of the triangulated person lay 4-13 px from where they
were.

Shapes: ``F`` frames, ``V`` views, ``K`` keypoints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.cameras import CameraRig, world_to_camera
from mocap.fitting.association import AssociationConfig
from mocap.fitting.tracking import VIEW_REASONS, Association, associate
from mocap.fitting.triangulation import triangulate
from mocap.io.keypoints_h5 import Detections2D

#: The reasons of `Association.view_reasons` under which a view is looked at again.
LOOK_AGAIN = tuple(VIEW_REASONS.index(r) for r in ("not_detected", "too_few_keypoints", "other_person", "disagrees"))


@dataclass(frozen=True)
class Miss:
    """A person (``person``, an id of the association) the view ``view`` missed in frame ``frame``."""

    frame: int
    view: int
    person: int
    expected: np.ndarray  # (K, 2) pixels of the person's keypoints triangulated from the other views; NaN where none


def missed(det: Detections2D, rig: CameraRig, assoc: Association, cfg: AssociationConfig = AssociationConfig(),
           min_keypoints: int = 8, min_inside: float = 0.8) -> list[Miss]:
    """Every frame and view where a person seen by at least two other views is not detected, though their
    keypoints triangulated from those views project with at least ``min_keypoints`` points in front of the
    camera and at least ``min_inside`` of their box inside the image."""
    out = []
    V, K = len(rig), len(det.names)
    sizes = rig.image_sizes.astype(float)
    for n in range(assoc.num_people):
        slots = assoc.slots(n)  # (F, V)
        reasons = assoc.view_reasons(n)
        frames = np.flatnonzero(((slots >= 0).sum(1) >= 2) & np.isin(reasons, LOOK_AGAIN).any(1))
        if not len(frames):
            continue
        kp = _picked(det, slots, frames)  # (N, V, K, 3)
        conf = np.where(np.nan_to_num(kp[..., 2]) >= cfg.min_confidence, kp[..., 2], 0.0)
        X, _ = triangulate(rig, kp[..., :2], np.nan_to_num(conf))
        uv = rig.project(np.broadcast_to(X[:, None], (len(frames), V, K, 3)))  # (N, V, K, 2)
        depth = world_to_camera(X[:, None], rig.R, rig.t)[..., 2]  # (N, V, K)
        uv[~(depth > 0)] = np.nan
        for i, f in enumerate(frames):
            for v in np.flatnonzero(np.isin(reasons[f], LOOK_AGAIN)):
                points = uv[i, v]
                good = np.isfinite(points).all(-1)
                if good.sum() < min_keypoints or _inside(points[good], sizes[v]) < min_inside:
                    continue
                out.append(Miss(int(f), int(v), n, points))
    return out


def _picked(det: Detections2D, slots: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``(N, V, K, 3)`` float64 keypoints of ``slots`` (F, V) in ``frames``; NaN where a view holds none (not
    `Detections2D.pick`, which copies the whole take and builds its masks' occluders)."""
    s = slots[frames]
    kp = det.keypoints[frames[:, None], np.arange(slots.shape[1])[None], np.clip(s, 0, None)].astype(np.float64)
    kp[s < 0] = np.nan
    return kp


def _inside(points: np.ndarray, size: np.ndarray) -> float:
    """Fraction of the box around ``points`` (N, 2) that lies inside an image of ``size`` (width, height)."""
    lo, hi = points.min(0), points.max(0)
    area = np.prod(np.maximum(hi - lo, 1.0))
    inner = np.prod(np.maximum(np.minimum(hi, size) - np.maximum(lo, 0.0), 0.0))
    return float(inner / area)


def session_misses(root: str | Path, det: Detections2D) -> list[Miss]:
    """`missed` of the session at ``root``'s detections ``det``, with its calibration and association settings
    (`mocap.detect.stage` looks there again); views are indices into ``det.cameras``."""
    from mocap.config import SessionConfig, load_config, read_yaml
    from mocap.fitting.config import load_pipeline
    from mocap.io.calibration_toml import load_rig

    root = Path(root)
    yaml = root / "session.yaml"
    scfg = load_config(SessionConfig, read_yaml(yaml), str(yaml)) if yaml.is_file() else SessionConfig()
    cfg = load_pipeline(scfg.pipeline, scfg.overrides).fit.association
    rig_all = load_rig(root / "calibration.toml")
    cams = [c for c in det.cameras if c in rig_all]
    if len(cams) < 3:  # two views to place a person and one that missed them
        return []
    sub, rig = det.select(cams), rig_all.subset(cams)
    index = [det.cameras.index(c) for c in cams]
    return [dataclasses.replace(m, view=index[m.view]) for m in missed(sub, rig, associate(sub, rig, cfg), cfg)]
