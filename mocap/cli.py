"""The `mocap` command line: parse, load, call a stage, save, report.

Heavy libraries (torch, cv2, mediapipe, bpy) are imported inside the commands that need them so that
`mocap --help` is instant. A `MocapError` becomes one line on stderr and exit code 2; `--debug` shows
the traceback instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from mocap import __version__
from mocap.errors import MocapError

console = Console()
err_console = Console(stderr=True)


class _Group(typer.core.TyperGroup):
    """Turns user mistakes (MocapError) into one line and exit code 2, for every sub-command."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except MocapError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err_console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=_Group, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="Multi-view markerless motion capture: calibrated cameras in, SMPL motion out.")


def _version(value: bool) -> None:
    if value:
        console.print(f"mocap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    ctx.obj = {"debug": debug}


def _yes_no(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


@app.command()
def info(session: Path = typer.Argument(..., help="Session folder.")) -> None:
    """Cameras, frames, fps, resolution, calibration status and outputs of a session."""
    from mocap.session import OUTPUTS, Session

    s = Session.load(session)
    calibrated = set()
    if s.calibration_path.is_file():
        from mocap.io.calibration_toml import load_rig

        calibrated = set(load_rig(s.calibration_path).names)
    footage = s.calibration_footage()
    table = Table(title=f"Session {s.root}")
    for col in ("camera", "source", "frames", "fps", "resolution", "calibrated", "board footage"):
        table.add_column(col)
    for v in s.views:
        fps = f"{v.info.fps:g}" if v.info.fps else "-"
        table.add_row(v.camera, str(v.info.path.relative_to(s.root)), str(v.info.frames), fps,
                      f"{v.info.width}x{v.info.height}", _yes_no(v.camera in calibrated), _yes_no(v.camera in footage))
    console.print(table)
    fps = f"{s.fps:g} fps" if s.fps else "fps unknown (set fps in session.yaml)"
    console.print(f"{len(s.views)} cameras, {s.num_frames} frames, {fps}; body model: {s.config.body}")
    for name, rel in OUTPUTS.items():
        console.print(f"  {rel}: {_yes_no((s.root / rel).is_file())}")
    for item in s.missing():
        console.print(f"[yellow]missing[/] {item}")


def _progress(description: str):
    """A rich progress bar and the ``progress(done, total)`` callback that drives it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console, transient=True)
    task = bar.add_task(description, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


@app.command()
def run(
    session: Path = typer.Argument(..., help="Session folder (calibration.toml and output/keypoints2d.h5)."),
    views: Optional[int] = typer.Option(None, "--views", help="Use the N best views (most detections, widest spread)."),
    shape: Optional[Path] = typer.Option(None, "--shape", help="Subject shape from `mocap shape`; betas are then held (Shape ReFit)."),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Pipeline preset name or YAML path (default: session.yaml's, else keypoints)."),
    combine: Optional[str] = typer.Option(None, "--combine", help="average: per-view updates merged by averaging; joint: one LM over all views."),
    debug: bool = typer.Option(False, "--debug", help="Also write per-iteration diagnostics to output/fit.h5."),
) -> None:
    """Fit the body to every frame: writes output/smpl.npz (world frame, AMASS-style) with per-frame quality."""
    import time

    import numpy as np

    from mocap.fitting.run import run_session
    from mocap.fitting.sequence import FLAGS

    bar, progress = _progress("fitting")
    start = time.perf_counter()
    with bar:
        result, out = run_session(session, views, shape, pipeline, combine, debug, progress)
    seconds = time.perf_counter() - start
    table = Table(title="Reprojection error per view (px, mean over frames)")
    for col in ("camera", "mean", "median", "frames used"):
        table.add_column(col)
    for v, cam in enumerate(result.cameras):
        e = result.error_px[:, v]
        table.add_row(cam, f"{np.nanmean(e):.2f}" if np.isfinite(e).any() else "-",
                      f"{np.nanmedian(e):.2f}" if np.isfinite(e).any() else "-", str(int(result.views_used[:, v].sum())))
    console.print(table)
    F = len(result.flags)
    for name, bit in FLAGS.items():
        n = int(((result.flags & bit) > 0).sum())
        if n:
            console.print(f"[yellow]{n} of {F} frames {name.replace('_', ' ')}[/]")
    console.print(f"{F} frames in {seconds:.1f} s ({F / seconds:.1f} frames/s); wrote {out}")


@app.command()
def shape(
    session: Path = typer.Argument(..., help="Session folder."),
    frames: str = typer.Option("0:60", "--frames", help="Frames START:STOP of the subject in A-pose or moving slowly."),
    output: Path = typer.Option(..., "-o", "--output", help="Subject file to write, e.g. subject.npz."),
    views: Optional[int] = typer.Option(None, "--views", help="Use the N best views."),
) -> None:
    """Fit the subject's body shape (betas) to a short sequence, for `mocap run --shape`."""
    from mocap.fitting.run import shape_session

    bar, progress = _progress("fitting shape")
    with bar:
        res, out = shape_session(session, frames, output, views, progress=progress)
    console.print(f"betas {' '.join(f'{b:+.2f}' for b in res.betas.tolist())}")
    console.print(f"{len(res.frames)} frames, mean reprojection error {res.error_px:.2f} px; wrote {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
