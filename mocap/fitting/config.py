"""Configuration of the keypoint fitting, filled from a pipeline preset (``mocap/pipelines/*.yaml``, shipped
inside the package so that a non-editable install finds them).

Units: metres, radians, frames. Every field has a default that works offline.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mocap.config import load_config, read_yaml
from mocap.errors import ConfigError
from mocap.fitting.association import AssociationConfig
from mocap.fitting.priors import PriorConfig
from mocap.fitting.solver import RobustConfig
from mocap.fitting.silhouette import SilhouetteConfig
from mocap.fitting.temporal import TemporalConfig


@dataclass(frozen=True)
class TriangulationConfig:
    max_error: float = 0.05
    """A view whose reprojection error at the point exceeds this (metres at the point's depth) is dropped."""


@dataclass(frozen=True)
class IKConfig:
    """The short inverse-kinematics fit to triangulated points that initialises frames."""

    iterations: int = 4
    sigma: float = 0.02
    """Expected triangulation error, metres."""
    robust_scale: float = 0.1
    """Geman-McClure scale of the 3D residuals, metres."""
    damping: float = 1e-3


@dataclass(frozen=True)
class SmoothingConfig:
    sigma_frames: float = 1.0
    """Gaussian post-filter on translations and on rotations (in the tangent space); 0 turns it off."""


@dataclass(frozen=True)
class FitConfig:
    iterations: int = 6
    """Feedback-update iterations per frame (ReFit's T)."""
    combine: Literal["average", "joint"] = "joint"
    """joint: one Levenberg-Marquardt step over all views at once (the precision-weighted average of the views'
    Gauss-Newton proposals, see docs/fitting.md), over a window of frames with the temporal prior;
    average: one damped Gauss-Newton update per view, merged by multi-view averaging (ReFit 3.5)."""
    weighting: Literal["plain", "information"] = "information"
    """plain: ReFit's plain means; information: each view weighted per joint by how much its keypoints
    constrain that joint (the trace of its block of J^T W J), so a view that cannot see a limb does not move it."""
    averaging: Literal["chordal", "median"] = "chordal"
    """Rotation averaging: chordal L2 mean (ReFit) or chordal L1 mean (robust to one wrong view)."""
    damping: float = 1e-4
    """Levenberg-Marquardt damping of the joint step (combine: joint), relative to the diagonal of the normal matrix.
    The systems are well posed (priors on every joint), so light damping converges in fewer iterations: on
    benchmarks/fitting.py (6 motions, 120 frames) 6 iterations at 1e-4 gave MPJPE 4.4 mm against 5.2 for 10 at
    0.01, and the real samples' reprojection and leave-one-view-out errors stayed within 0.6 px."""
    view_damping: float = 1.0
    """The same for each view's own step (combine: average). One view hardly constrains depth, so its
    undamped step moves the body along its rays by as much as its noise allows; heavy damping keeps each
    proposal near the current body and lets the average do the work (benchmarks/fitting.py)."""
    min_confidence: float = 0.3
    """Detections with a lower confidence are ignored."""
    fix_swaps: bool = True
    """Before fitting, relabel a view's left and right keypoints in the frames where the other views show
    that its detector swapped them (:mod:`mocap.fitting.swaps`; needs 3 views or more)."""
    min_keypoints: int = 6
    """A view proposes an update for a frame only when it sees this many keypoints."""
    min_views: int = 2
    """Frames seen by fewer views are flagged and handled as `missing` says."""
    missing: Literal["interpolate", "empty"] = "interpolate"
    """Frames with too few views: interpolated from their fitted neighbours (flagged), or left NaN."""
    batch_size: int = 40
    """Frames fitted together; each batch starts from the previous batch's last result."""
    lost_error: float = 0.08
    """Median keypoint error (metres at the body) beyond which a frame counts as lost: the next batch
    then starts from the triangulation alone."""
    shape_frames: int = 30
    """Without --shape, betas are first fitted on this many frames spread over the sequence, then held."""
    robust: RobustConfig = field(default_factory=RobustConfig)
    priors: PriorConfig = field(default_factory=PriorConfig)
    ik: IKConfig = field(default_factory=IKConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    silhouette: SilhouetteConfig = field(default_factory=SilhouetteConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    """Which detection in each view is which person, and who is who over time (:mod:`mocap.fitting.tracking`)."""
    threads: int = 1
    """torch CPU threads while fitting (restored after). The solver's many small batched products gain
    nothing from more, and spinning threads cost several times the work on a busy machine; 0 keeps torch's."""

    def replace(self, **changes) -> "FitConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RefitConfig:
    """The learned updater (ReFit, :mod:`mocap.fitting.refit`): a released checkpoint on per-view crops."""

    checkpoint: str | None = None
    """Path of a released ``checkpoint_best.pth.tar``; ``mocap run --checkpoint`` overrides it."""
    iterations: int = 10
    """Feedback-update steps per frame (the paper reports 5 and 10)."""
    mode: Literal["world", "reference"] = "world"
    """world: one world-frame body reprojected with the real cameras; reference: the official REFIT_MV averaging."""
    averaging: Literal["chordal", "median"] = "chordal"
    box_margin: float = 1.2
    """Crop side = this times the longer side of the detector's person box (ReFit's demo uses 1.2)."""
    frames_per_batch: int = 4
    """Frames per network call (views x this many crops)."""


@dataclass(frozen=True)
class PipelineConfig:
    """A pipeline preset: which updater drives the fit, and its settings.

    updater: ``keypoints`` (no learned weights), ``refit`` (the ReFit network, needs a checkpoint and SMPL
    files) or ``refit+keypoints`` (ReFit's result as the starting point of the keypoint updater)."""

    name: str = "keypoints"
    updater: Literal["keypoints", "refit", "refit+keypoints"] = "keypoints"
    fit: FitConfig = field(default_factory=FitConfig)
    refit: RefitConfig = field(default_factory=RefitConfig)


PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"


def pipeline_path(name: str) -> Path:
    """A preset name (``keypoints`` -> ``mocap/pipelines/keypoints.yaml``, shipped as package data) or a YAML path."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    return PIPELINES_DIR / f"{name}.yaml"


def load_pipeline(name: str, overrides: dict | None = None, source: str = "session.yaml: overrides") -> PipelineConfig:
    """The preset ``name`` with ``overrides`` (nested mapping, e.g. from session.yaml) applied on top."""
    path = pipeline_path(name)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml")))
        raise ConfigError(f"{path}: no such pipeline; presets are {known}, or give a path to a YAML file")
    cfg = load_config(PipelineConfig, read_yaml(path), path.name)
    return load_config(PipelineConfig, overrides, source, base=cfg) if overrides else cfg
