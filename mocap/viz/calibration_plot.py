"""Top view of a calibrated rig: cameras (centre, viewing direction, name) and the board positions seen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.cameras import CameraRig
from mocap.errors import MissingDependencyError
from mocap.io.atomic import save_figure


def plot_top_view(rig: CameraRig, board_points: np.ndarray | None, path: str | os.PathLike, title: str = "") -> Path:
    """Write a PNG looking down the world's y axis: x to the right, z downwards on the page.

    ``board_points`` (M, N, 3): board corners per frame (NaN allowed), drawn as their centres.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("the calibration plot needs matplotlib: pip install matplotlib") from None
    centres = rig.centers
    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    if board_points is not None and len(board_points):
        c = np.nanmean(board_points, axis=1)
        c = c[~np.isnan(c[:, 0])]
        ax.scatter(c[:, 0], c[:, 2], s=8, c="tab:orange", alpha=0.6, label="board (per frame)")
    span = np.ptp(centres[:, [0, 2]], axis=0).max() if len(centres) > 1 else 1.0
    arrow = 0.12 * max(span, 0.5)
    for cam, C in zip(rig, centres):
        d = cam.R[2]  # optical axis in the world
        ax.plot(C[0], C[2], "^", color="tab:blue", ms=9)
        ax.arrow(C[0], C[2], arrow * d[0], arrow * d[2], head_width=arrow * 0.25, color="tab:blue", length_includes_head=True)
        ax.annotate(cam.name, (C[0], C[2]), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.invert_yaxis()
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.set_title(title or "Cameras and board, seen from above")
    if board_points is not None:
        ax.legend(loc="best")
    return save_figure(fig, path, format="png", bbox_inches="tight")
