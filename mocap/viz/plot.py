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

from mocap.body.model import JOINT_NAMES
from mocap.io.atomic import save_figure
from mocap.io.smpl_npz import SmplSequence
from mocap.viz.result import view_names

ERROR_KEY = "reprojection_error_px"


def joint_angles(poses: np.ndarray) -> np.ndarray:
    """``(F, 24)`` degrees from rest of axis-angle ``poses`` (F, 24, 3); NaN frames stay NaN."""
    import torch

    from mocap.rotations import axis_angle_to_matrix, geodesic_angle

    p = torch.as_tensor(np.nan_to_num(poses), dtype=torch.float64)
    R = axis_angle_to_matrix(p)
    angles = geodesic_angle(R, torch.eye(3, dtype=torch.float64).expand_as(R)).numpy()
    angles = np.degrees(angles)
    angles[~np.isfinite(poses).all(-1)] = np.nan
    return angles


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


def plot_joint_angles(result: SmplSequence):
    """Small multiples: one panel per joint (global orientation included), angle from rest over time."""
    plt = _fig()
    angles = joint_angles(result.poses)
    t = np.arange(result.num_frames) / result.fps
    fig, axes = plt.subplots(4, 6, figsize=(18, 10), sharex=True, constrained_layout=True)
    for j, ax in enumerate(axes.flat):
        ax.plot(t, angles[:, j], lw=1.2, color="C0")
        ax.set_title("global orient" if j == 0 else JOINT_NAMES[j], fontsize=9)
        ax.set_ylim(0, max(10.0, float(np.nanmax(angles[:, j])) * 1.1 if np.isfinite(angles[:, j]).any() else 10.0))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("degrees from rest", fontsize=8)
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
    fig, axes = plt.subplots(rows, 1, figsize=(12, 3.6 * rows), squeeze=False, constrained_layout=True)
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
