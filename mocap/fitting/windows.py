"""Refitting a fitted take where its detections changed, window by window.

After a fit, `mocap.fitting.people.fit_without_far_views` leaves out the views and keypoints far from it and
fits again, up to three times. On a long take the detections left out touch only some windows (or, with
outliers spread over the take, most windows but by little), so refitting the whole take from the
triangulation each time cost about as much as the first fit, per pass.

`refit_windows` refits the take's windows (`TakeFit`, ``batch_size`` frames each, anchored on the previous
window's last two frames) as the whole-take fit would, from triangulation and inverse kinematics, except
that a window whose detections did not change, more than `MARGIN` windows after the last one that did,
keeps its earlier fit. Starting a changed window from its earlier fit instead would be cheaper, but that fit
is the one a wrong detection dragged, often into a pose the remaining detections cannot pull it out of in a
few iterations (joints up to 0.36 m off on a 3,000-frame synthetic take, 3 iterations).

The shape is the first fit's. The views and keypoints left out are the few far from that fit, and fitting
the shape again without them moved it by less than the noise, yet cost a shape fit per pass and refitted
every window: on a rendered 2-person session (benchmarks/people.py --render 0.5, measured when this changed)
the fit took 47 s for two people against 11 s for one alone, 23 s keeping the shape, with the same MPJPE
(22.4 / 30.6 -> 22.4 / 30.8 mm) and the same reprojection on the real multi-person sample.

So the windows up to the first change are the whole-take refit's (with the same shape) bit for bit, the
refitted ones too (the same starts and anchors), and the kept ones after differ from it by what their
anchors' change leaves after a window: a few micrometres (tests/test_windows.py).
"""

from __future__ import annotations

import numpy as np
import torch

from mocap.body.model import BodyModel
from mocap.cameras import CameraRig
from mocap.fitting.config import FitConfig
from mocap.fitting.sequence import FLAGS, FitResult, Progress, TakeFit, batches, torch_threads
from mocap.io.keypoints_h5 import Keypoints2D

#: Windows refitted after each window whose detections changed: its last two frames, which anchor the next
#: window's temporal prior, moved, and the next window's fit with them.
MARGIN = 1
_KEPT = FLAGS["poor_fit"] | FLAGS["reinitialized"]


def refit_windows(previous: FitResult, kp: Keypoints2D, rig: CameraRig, body: BodyModel, spec, cfg: FitConfig,
                  changed: np.ndarray, progress: Progress | None = None) -> FitResult:
    """Fit ``kp`` again where it differs from the detections of ``previous`` (its ``raw`` fits needed), with
    its shape: ``changed`` ``(F,)`` marks the frames whose detections changed. The refit's windows are written
    over ``previous.raw`` (a take-long copy fewer, 15 MB for 18,000 frames), which is not to be read after."""
    with torch_threads(cfg.threads):
        take = TakeFit(kp, rig, body, spec, cfg, previous.betas, held=previous.betas_held, out=previous.raw)
        was_valid = (previous.flags & FLAGS["too_few_views"]) == 0
        old = list(batches(np.flatnonzero(was_valid), cfg.batch_size))
        left = 0
        for b, idx in enumerate(batches(take.frames, cfg.batch_size)):
            left = MARGIN + 1 if changed[idx].any() else left
            if b < len(old) and np.array_equal(old[b], idx) and left == 0:
                take.flags[idx] |= previous.flags[idx] & _KEPT
                take.keep(idx, previous.raw.index(torch.as_tensor(idx)))
            else:
                take.fit(idx, take.start(idx))
            left = max(left - 1, 0)
            if progress:
                progress(take.done, len(take.frames))
        return take.result()
