"""Leave-one-view-out error: fit on all views but one, project the body into the held-out view, and measure
the 2D distance to that view's own detections. On real footage, with no ground truth, this is the honest
accuracy figure: the held-out detections took no part in the fit. Shapes: ``V`` views, ``F`` frames, ``K``
keypoints.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mocap.fitting.people import fit_without_far_views, implausible_keypoints, keypoint_positions
from mocap.fitting.sequence import fit_sequence
from mocap.fitting.solver import BodyPoints
from mocap.fitting.windows import refit_windows


@dataclass(frozen=True)
class LeaveOneViewOut:
    cameras: tuple[str, ...]
    names: tuple[str, ...]  # keypoint names
    residuals: np.ndarray  # (V, F, K, 2) px, projected minus detected; NaN where the held-out view has no
    # confident detection or the keypoint is unused

    @property
    def errors(self) -> np.ndarray:
        """``(V, F, K)`` px, the residuals' lengths."""
        return np.linalg.norm(self.residuals, axis=-1)

    def offsets(self) -> dict[str, np.ndarray]:
        """Each view's mean residual ``(2,)`` px: one shift of its whole image, the same in every frame and for
        every keypoint, as a camera off its calibration or a detector reading that view consistently off gives;
        fitting settings hardly move it (on the Pose2Sim sample, by about 1 px over every one tried)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a view never compared: NaN
            return {c: np.nanmean(self.residuals[v].reshape(-1, 2), 0) for v, c in enumerate(self.cameras)}

    def per_view(self, stat=np.mean, centred: bool = False) -> dict[str, float]:
        """``centred``: the errors left once each view's `offsets` is taken off its residuals."""
        off = self.offsets()
        return {c: _stat(np.linalg.norm(self.residuals[v] - (off[c] if centred else 0), axis=-1), stat)
                for v, c in enumerate(self.cameras)}

    def per_keypoint(self, stat=np.mean) -> dict[str, float]:
        return {n: _stat(self.errors[..., k], stat) for k, n in enumerate(self.names)}

    def overall(self, stat=np.mean) -> float:
        return _stat(self.errors, stat)


def _stat(x: np.ndarray, stat) -> float:
    """``stat`` (np.mean, np.median...) of the finite values; NaN when none."""
    x = x[np.isfinite(x)]
    return float(stat(x)) if x.size else float("nan")


def leave_one_view_out(keypoints, rig, body, spec, cfg, betas: torch.Tensor | None = None,
                       min_confidence: float = 0.5, progress: Callable[[int, int], None] | None = None) -> LeaveOneViewOut:
    """For each view, fit the other views as `mocap run` does (``fit_sequence`` with ``cfg``, then refits
    without the views and keypoints far from the fit, `mocap.fitting.people.fit_without_far_views`) and
    compare with every confident detection of the held-out view.

    Args:
        keypoints: ``Keypoints2D`` of ``V >= 3`` views; rig in the same view order.
        min_confidence: held-out detections below it are not compared; keypoints with weight 0 never are.
    """
    points = BodyPoints(body, spec)
    cams = tuple(keypoints.cameras)
    residuals = np.full((len(cams), keypoints.num_frames, len(points), 2), np.nan)
    for v, held in enumerate(cams):
        others = [c for c in cams if c != held]
        res = _fit(keypoints.select(others), rig.subset(others), body, spec, cfg, betas)
        with torch.no_grad():
            X = points.of(res.params).double().numpy()  # (F, K, 3), NaN for empty frames
        uv = rig[held].project(X.reshape(-1, 3)).reshape(X.shape[0], -1, 2)
        det = keypoints.keypoints[:, v].astype(np.float64)
        used = (det[..., 2] >= min_confidence) & (np.asarray(spec.weights)[None] > 0) & np.isfinite(uv).all(-1)
        residuals[v] = np.where(used[..., None], uv - det[..., :2], np.nan)
        if progress:
            progress(v + 1, len(cams))
    return LeaveOneViewOut(cams, tuple(points.names), residuals)


def _fit(keypoints, rig, body, spec, cfg, betas):
    def fit(kp, previous=None, changed=None):
        if previous is None:
            return fit_sequence(kp, rig, body, spec, cfg, betas), {}
        return refit_windows(previous, kp, rig, body, spec, cfg, changed), {}

    points = BodyPoints(body, spec)
    return fit_without_far_views(fit, keypoints, rig, cfg.association, lambda r: keypoint_positions(points, r),
                                 implausible_keypoints(keypoints, rig, points, cfg))[0]
