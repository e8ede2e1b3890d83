"""The figure of `mocap eval --plot`: per-joint errors and errors over time (matplotlib, the `dev` extra)."""

from __future__ import annotations

import os
from pathlib import Path

from mocap.errors import MissingDependencyError
from mocap.eval.metrics import Metrics


def plot_metrics(metrics: Metrics, path: str | os.PathLike, title: str = "") -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("--plot needs matplotlib: pip install matplotlib (or the dev extra)") from None
    from mocap.io.atomic import save_figure

    fig, (ax_j, ax_t) = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    names = list(metrics.per_joint)
    ax_j.bar(range(len(names)), [metrics.per_joint[n] for n in names], color="tab:blue")
    ax_j.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax_j.set_ylabel("MPJPE (mm, pelvis-aligned)")
    ax_j.set_title(title or "per-joint error")
    ax_t.plot(metrics.frames, metrics.mpjpe_per_frame, ".-", ms=2, label=f"MPJPE {metrics.mpjpe:.1f} mm")
    ax_t.plot(metrics.frames, metrics.pa_mpjpe_per_frame, ".-", ms=2, label=f"PA-MPJPE {metrics.pa_mpjpe:.1f} mm")
    if metrics.global_per_frame is not None:
        ax_t.plot(metrics.frames, metrics.global_per_frame, ".-", ms=2, label=f"global {metrics.global_mpjpe:.1f} mm")
    ax_t.set_xlabel("ground-truth frame")
    ax_t.set_ylabel("mm")
    ax_t.legend()
    return save_figure(fig, path, dpi=110)
