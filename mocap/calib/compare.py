"""How far a calibrated rig is from a reference one (the truth of a synthetic scene, another tool's calibration).

Calibrations fix their world frames differently, so the estimate is first brought into the reference's frame
by the rigid motion fitted on all camera poses (rotation: the chordal mean of ``R_ref^T R_est``; translation:
the mean offset of the rotated centres). No scale is fitted: a board of known size fixes the metric scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from mocap.cameras import CameraRig
from mocap.errors import CalibrationError


@dataclass(frozen=True)
class RigErrors:
    """Per camera, in the order of the reference rig: ``focal`` (C,) largest relative error of fx, fy;
    ``principal_px`` (C,) largest error of cx, cy in pixels; ``centre_m`` (C,) metres after alignment;
    ``rotation_deg`` (C,) degrees after alignment. ``Q`` (3, 3), ``s`` (3,): the alignment
    ``X_ref = Q X_est + s``."""

    cameras: tuple[str, ...]
    focal: np.ndarray
    principal_px: np.ndarray
    centre_m: np.ndarray
    rotation_deg: np.ndarray
    Q: np.ndarray
    s: np.ndarray


def compare_rigs(estimate: CameraRig, reference: CameraRig) -> RigErrors:
    """Errors of ``estimate`` against ``reference``, matching cameras by name."""
    missing = [n for n in reference.names if n not in estimate]
    if missing:
        raise CalibrationError(f"the calibration lacks camera(s) {', '.join(missing)} of the reference")
    est = estimate.subset(reference.names)
    Q = Rotation.from_matrix(np.stack([r.R.T @ e.R for e, r in zip(est, reference)])).mean().as_matrix()
    s = (reference.centers - est.centers @ Q.T).mean(0)
    focal = np.abs(np.diagonal(est.K, axis1=1, axis2=2)[:, :2] / np.diagonal(reference.K, axis1=1, axis2=2)[:, :2] - 1)
    principal = np.abs(est.K[:, :2, 2] - reference.K[:, :2, 2])
    centre = np.linalg.norm(est.centers @ Q.T + s - reference.centers, axis=1)
    rot = np.linalg.norm(Rotation.from_matrix(np.swapaxes(est.R @ Q.T, 1, 2) @ reference.R).as_rotvec(), axis=1)
    return RigErrors(tuple(reference.names), focal.max(1), principal.max(1), centre, np.degrees(rot), Q, s)
