"""`mocap viz` and `mocap report`: overlay videos, plots, the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mocap.cli._base import Group, app, console, progress_bar
from mocap.errors import ConfigError



viz_app = typer.Typer(cls=Group, no_args_is_help=True, help="Look at a result: overlay videos, plots.")
app.add_typer(viz_app, name="viz")


@viz_app.command("overlay")
def viz_overlay(
    session: Path = typer.Argument(..., help="Session folder with output/smpl.npz."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Folder for the videos (default: SESSION/output/overlay)."),
    style: str = typer.Option("shaded", "--style", help="shaded or wireframe."),
    scale: float = typer.Option(0.5, "--scale", help="Size of the per-view videos relative to the footage."),
    frames: Optional[str] = typer.Option(None, "--frames", help="START:STOP frames to draw (default: all)."),
) -> None:
    """Per-view MP4s and a grid of all views with the fitted body, detected and fitted keypoints over the footage."""
    from mocap.viz.overlay import write_overlays

    idx = None
    if frames is not None:
        try:
            start, stop = (int(x) if x else None for x in frames.split(":"))
        except ValueError:
            raise ConfigError(f"--frames {frames!r}: expected START:STOP, e.g. 0:60") from None
        idx = slice(start, stop)
    bar, progress = progress_bar("drawing overlays")
    with bar:
        res = write_overlays(session, out, style, idx, scale, progress=progress)
    for cam, path in res.views.items():
        console.print(f"{cam}: {path}")
    console.print(f"grid: {res.grid} ({res.frames} frames)")


@viz_app.command("plot")
def viz_plot(
    result: Path = typer.Argument(..., help="A fitted sequence, e.g. SESSION/output/smpl.npz."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground truth (npz) to plot errors against."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Folder for the PNGs (default: next to RESULT)."),
) -> None:
    """Joint angles over time, anatomical angles (CSV and plot) and per-frame errors (reprojection per view; MPJPE against --gt)."""
    from mocap.viz.plot import write_plots

    for path in write_plots(result, out, gt):
        console.print(f"wrote {path}")


@app.command()
def report(
    session: Path = typer.Argument(..., help="Session folder."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground truth npz (default: SESSION/ground_truth.npz when present)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="HTML file (default: SESSION/output/report.html)."),
) -> None:
    """One self-contained HTML page: calibration, detection, reprojection and accuracy tables, overlay frames, plots."""
    from mocap.viz.report import write_report

    console.print(f"wrote {write_report(session, out, gt)}")
