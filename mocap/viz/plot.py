"""Plots of a fitted sequence: joint angles over time, per-frame reprojection errors, errors against truth.

Joint angle: the geodesic angle (degrees) of each joint's rotation from the rest pose, i.e. the angle of the
rotation relative to its parent, so 0 is the template's pose. Anatomical angles (flexion, abduction, rotation of
hips, knees, shoulders, elbows): :mod:`mocap.viz.angles`. Reprojection errors are the per-view,
per-frame values `mocap run` stores (``reprojection_error_px`` (F, V)).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.body.skeleton import JOINT_NAMES
from mocap.io.atomic import save_figure
from mocap.io.smpl_npz import SmplSequence
from mocap.viz.result import view_names

ERROR_KEY = "reprojection_error_px"


def joint_angles(poses: np.ndarray) -> np.ndarray:
    """``(F, 24)`` degrees from rest of axis-angle ``poses`` (F, 24, 3); NaN frames stay NaN.

    The geodesic angle of a rotation from the identity is its axis-angle norm folded into [0, 180] degrees."""
    angles = np.degrees(np.linalg.norm(poses, axis=-1)) % 360.0
    return np.where(angles > 180.0, 360.0 - angles, angles)


def reprojection_errors(result: SmplSequence) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """The stored per-frame, per-view reprojection errors ``(F, V)`` px and the view names, or None."""
    if ERROR_KEY not in result.extra:
        return None
    err = np.asarray(result.extra[ERROR_KEY], dtype=np.float64)
    if err.ndim == 1:
        err = err[:, None]
    cams = view_names(result) or tuple(f"view {v}" for v in range(err.shape[1]))
    return err, cams


def _fig():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Panels of the joint-angle plot: the trunk, then each limb with its left and right side on facing panels.
ANGLE_GROUPS = (
    ("trunk and head", (0, 3, 6, 9, 12, 15)),
    ("left leg", (1, 4, 7, 10)), ("left arm", (13, 16, 18, 20, 22)),
    ("right leg", (2, 5, 8, 11)), ("right arm", (14, 17, 19, 21, 23)),
)


def plot_joint_angles(result: SmplSequence):
    """One panel per body part (trunk, each leg, each arm), one line per joint: angle from rest over time.

    Five panels rather than one per joint: matplotlib's cost is per axis (ticks, labels), and 24 axes took
    3 s of CPU, most of a report's time."""
    plt = _fig()
    angles = joint_angles(result.poses)
    t = np.arange(result.num_frames) / result.fps
    fig, axes = plt.subplots(2, 3, figsize=(16, 8), sharex=True)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.08, top=0.9, wspace=0.18, hspace=0.25)
    top = np.nanmax(angles) if np.isfinite(angles).any() else 10.0
    slots = (axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 1], axes[1, 2])
    for ax, (title, joints) in zip(slots, ANGLE_GROUPS):
        for j in joints:
            ax.plot(t, angles[:, j], lw=1.2, label="global orient" if j == 0 else JOINT_NAMES[j])
        ax.set_title(title, fontsize=11)
        ax.set_ylim(0, max(10.0, float(top) * 1.05))
        ax.legend(fontsize=8, loc="upper right", ncol=2)
        ax.grid(alpha=0.3)
    axes[1, 0].axis("off")
    axes[0, 0].tick_params(labelbottom=True)  # the panel above the empty slot shows its own time axis
    for ax in (axes[0, 0], axes[1, 1], axes[1, 2]):
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("degrees from rest")
    fig.suptitle("Joint angles (geodesic angle of each joint's rotation from the rest pose)")
    return fig


def plot_errors(result: SmplSequence, metrics=None):
    """Per-frame reprojection error of every view, and with ``metrics`` (from `mocap.eval`) the per-frame
    MPJPE / PA-MPJPE against the ground truth."""
    plt = _fig()
    rep = reprojection_errors(result)
    rows = (rep is not None) + (metrics is not None)
    if rows == 0:
        return None
    fig, axes = plt.subplots(rows, 1, figsize=(12, 3.6 * rows), squeeze=False)
    fig.subplots_adjust(left=0.07, right=0.78, bottom=0.14 / rows, top=1 - 0.1 / rows, hspace=0.45)
    axes = list(axes[:, 0])
    t = np.arange(result.num_frames) / result.fps
    if rep is not None:
        ax = axes.pop(0)
        err, cams = rep
        for v, cam in enumerate(cams):
            ax.plot(t[: len(err)], err[:, v], lw=1.2, label=f"{cam} (mean {np.nanmean(err[:, v]):.1f} px)")
        ax.set_ylabel("reprojection error (px)")
        ax.set_xlabel("time (s)")
        ax.set_title("Per-view reprojection error of the fitted body keypoints")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0))  # outside: a bad view's curve fills the plot
        ax.grid(alpha=0.3)
    if metrics is not None:
        ax = axes.pop(0)
        ft = np.asarray(metrics.frames) / result.fps
        ax.plot(ft, metrics.mpjpe_per_frame, lw=1.2, label=f"MPJPE (mean {metrics.mpjpe:.1f} mm)")
        ax.plot(ft, metrics.pa_mpjpe_per_frame, lw=1.2, label=f"PA-MPJPE (mean {metrics.pa_mpjpe:.1f} mm)")
        ax.set_ylabel("error vs ground truth (mm)")
        ax.set_xlabel("time (s)")
        ax.set_title("Errors against the ground truth")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def evaluate_against(result_path: str | os.PathLike, gt_path: str | os.PathLike, offset: int = 0):
    """Metrics of the result against ground truth through `mocap.eval`."""
    from mocap.errors import MissingDependencyError

    try:
        from mocap.eval.evaluate import evaluate_files
    except ImportError:
        raise MissingDependencyError("evaluation against ground truth needs mocap.eval, which this install lacks") from None
    return evaluate_files(result_path, gt_path, offset)


def write_plots(result_path: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                gt: str | os.PathLike | None = None) -> list[Path]:
    """``joint_angles.png``, ``anatomical_angles.csv`` / ``.png`` and ``errors.png`` (when there is something to
    show) next to the result or in ``out_dir``."""
    from mocap.viz.angles import write_angle_outputs
    from mocap.viz.result import load_result

    result = load_result(result_path)
    out_dir = Path(out_dir) if out_dir is not None else Path(result_path).parent
    paths = [save_figure(plot_joint_angles(result), out_dir / "joint_angles.png", dpi=90)]
    paths += write_angle_outputs(result, out_dir)
    fig = plot_errors(result, evaluate_against(result_path, gt) if gt is not None else None)
    if fig is not None:
        paths.append(save_figure(fig, out_dir / "errors.png", dpi=90))
    return paths
