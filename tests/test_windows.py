"""Refitting only the windows whose detections changed (mocap.fitting.windows) against refitting the whole take."""

import numpy as np
import pytest
import torch

from tests.fitting_data import body_spec, joints_spec, keypoints, motion, ring_rig
from mocap.body.model import load_body
from mocap.fitting.config import FitConfig
from mocap.fitting.sequence import fit_sequence
from mocap.fitting.windows import MARGIN, refit_windows

CFG = FitConfig()  # the default: joint step, temporal prior, smoothing
W = CFG.batch_size


@pytest.fixture(scope="module")
def take():
    """Six windows of a noisy take whose window 2 holds a wrong detection in one view (0.15 m off), the
    take's first fit, and the detections without it."""
    body = load_body(body_spec())
    spec, rig = joints_spec(), ring_rig(4)
    truth = motion(6 * W, seed=4)
    kp = keypoints(body, spec, truth, rig, noise=2.0, seed=3)
    wrong = kp.keypoints.copy()
    frames = np.arange(2 * W + 5, 2 * W + 12)
    wrong[frames, 1, :, :2] += 40.0  # about 0.15 m at 4 m and f = 1000 px
    kp = type(kp)(**{**kp.__dict__, "keypoints": wrong})
    first = fit_sequence(kp, rig, body, spec, CFG)
    fixed = wrong.copy()
    fixed[frames, 1] = np.nan
    changed = np.zeros(len(truth), bool)
    changed[frames] = True
    return body, spec, rig, truth, first, type(kp)(**{**kp.__dict__, "keypoints": fixed}), changed


def _joints(body, p):
    with torch.no_grad():
        return body.points(p.global_orient, p.body_pose, p.betas, p.transl)[0].double()


@pytest.mark.parametrize("held", [True, False])
def test_windowed_refit_matches_the_whole_take_refit(take, held):
    """With the shape given (Shape ReFit) and with it fitted: either way the refit keeps it."""
    body, spec, rig, truth, first, fixed, changed = take
    raw = type(first.raw)(*(getattr(first.raw, k).clone() for k in ("global_orient", "body_pose", "betas", "transl")))
    previous = type(first)(**{**first.__dict__, "betas_held": held, "raw": raw})  # the refit writes over raw
    whole = fit_sequence(fixed, rig, body, spec, CFG, first.betas)
    part = refit_windows(previous, fixed, rig, body, spec, CFG, changed)
    X_whole, X_part, X_first = _joints(body, whole.params), _joints(body, part.params), _joints(body, first.params)
    gap = lambda X: (X - X_whole).norm(dim=-1).max(-1).values * 1000  # (F,) mm, worst joint
    refitted = np.arange(2 * W, (3 + MARGIN) * W)
    kept = np.arange((3 + MARGIN) * W + 4, 6 * W)  # after the margin, beyond the smoothing's reach
    assert torch.equal(part.betas, first.betas) and part.betas_held == held
    assert float(gap(X_part)[:2 * W - 4].max()) == 0.0  # before the change: the same fit
    assert float(gap(X_part)[refitted].max()) < 1e-3  # the refitted windows: the same starts and anchors
    assert float(gap(X_part)[kept].max()) < 5e-3  # the kept ones: what the anchors' change leaves
    assert float(gap(X_first)[refitted].max()) > 0.5  # while the change itself moved the fit by 1 mm
    assert np.array_equal(part.flags, whole.flags)
    assert np.nanmax(np.abs(part.error_px - whole.error_px)) < 1e-3  # px
