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
from mocap.errors import ConfigError, MocapError

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


body_app = typer.Typer(cls=_Group, no_args_is_help=True, help="Body models: export the bundled body, picture a template.")
app.add_typer(body_app, name="body")


@body_app.command("export")
def body_export(
    spec: str = typer.Argument("open", help="'open' (the bundled body) or a path to an SMPL-format .npz/.pkl."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder to write SMPL_NEUTRAL.pkl into."),
) -> None:
    """Write a body as an SMPL-style pickle (plain numpy arrays) for tools that only read SMPL files."""
    from mocap.body.export import export_smpl_pickle

    path = export_smpl_pickle(out, spec)
    console.print(f"wrote {path}")


@body_app.command("show")
def body_show(
    spec: str = typer.Argument("open", help="'open', 'smpl' ($MOCAP_SMPL_DIR) or a path to SMPL files."),
    out: Path = typer.Option(Path("body.png"), "--out", "-o", help="PNG to write."),
    keypoints: str = typer.Option("blazepose33", "--keypoints", help="Keypoint format: blazepose33, coco17, body25."),
    gender: str = typer.Option("neutral", "--gender", help="neutral, male or female."),
) -> None:
    """Picture the template (front and side) with its joints and detector keypoints labelled."""
    from mocap.body.model import load_body
    from mocap.viz.body_figure import body_figure

    path = body_figure(load_body(spec, gender), out, keypoints)
    console.print(f"wrote {path}")


viz_app = typer.Typer(cls=_Group, no_args_is_help=True, help="Look at a result: overlay videos, plots.")
app.add_typer(viz_app, name="viz")


def _progress_bar(description: str):
    """A rich progress bar and the ``progress(done, total)`` callback that drives it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console, transient=True)
    task = bar.add_task(description, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


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
    bar, progress = _progress_bar("drawing overlays")
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
    """Joint angles over time and per-frame errors (reprojection per view; MPJPE against --gt)."""
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


@app.command()
def demo(
    out: Path = typer.Argument(Path("demo_output"), help="Folder to write the demo sessions into (replaced if present)."),
    only: Optional[str] = typer.Option(None, "--only", help="synthetic or real: run one part only."),
    overlays: bool = typer.Option(True, "--overlays/--no-overlays", help="Write overlay videos."),
    sample: Optional[Path] = typer.Option(None, "--sample", help="Real session to use (default: examples/pose2sim_demo_single)."),
) -> None:
    """The whole chain on bundled samples: a synthetic session with known truth, and a real 4-camera recording."""
    import time

    from mocap.demo import DemoSettings, run_demo, summary_markdown

    parts = ("synthetic", "real") if only is None else (only,)
    if any(p not in ("synthetic", "real") for p in parts):
        raise ConfigError(f"--only {only!r}: use synthetic or real")
    start = time.perf_counter()
    result = run_demo(out, DemoSettings(overlays=overlays, real_sample=sample), log=lambda line: console.print(line, highlight=False, markup=False),
                      parts=parts)
    console.print(summary_markdown(result), highlight=False, markup=False)
    console.print(f"demo finished in {time.perf_counter() - start:.0f} s; summary: {out / 'summary.md'}; "
                  f"reports: {', '.join(str(out / p / 'output' / 'report.html') for p in parts)}")


def _frame_ranges(mask) -> str:
    """``[F]`` bool -> ``"3-5, 9"`` (at most five ranges shown)."""
    import numpy as np

    idx = np.flatnonzero(mask)
    starts = idx[np.r_[True, np.diff(idx) > 1]]
    ends = idx[np.r_[np.diff(idx) > 1, True]]
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts.tolist(), ends.tolist())]
    return ", ".join(parts[:5]) + (", ..." if len(parts) > 5 else "")


@app.command()
def export(
    result: Path = typer.Argument(..., help="SMPL sequence written by `mocap run` (output/smpl.npz)."),
    fmt: Optional[str] = typer.Option(None, "--fmt", help="npz | h5 | bvh | fbx | glb (default: from -o's suffix)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (default: RESULT's name, new suffix)."),
    amass_smplh: bool = typer.Option(False, "--amass-smplh", help="npz/h5: 156 SMPL-H pose values, hands zero."),
    units: str = typer.Option("m", "--units", help="bvh: m or cm."),
    body: Optional[str] = typer.Option(None, "--body", help="Body model: open, smpl or a file (default: the sequence's)."),
) -> None:
    """Export an SMPL sequence as AMASS-style npz/h5, BVH, FBX (needs the fbx extra) or GLB.

    Frames with NaN values hold the last valid pose (a warning says which), so frame i stays at time i/fps.
    """
    from rich.progress import Progress

    from mocap.io.export import FORMATS, default_output, export_sequence
    from mocap.io.smpl_npz import hold_invalid_frames, load_sequence

    if fmt is None:
        if output is None:
            raise ConfigError("give --fmt (npz, h5, bvh, fbx or glb) or an output file with -o")
        fmt = next((f for f, suffixes in FORMATS.items() if output.suffix.lower() in suffixes), None)
        if fmt is None:
            raise ConfigError(f"{output}: cannot tell the format from the suffix; give --fmt")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    seq = load_sequence(result)
    seq, held = hold_invalid_frames(seq)
    if held.any():
        err_console.print(f"[yellow]warning:[/] {result}: {int(held.sum())} of {seq.num_frames} frames had NaN "
                          f"values and hold the last valid pose (frames {_frame_ranges(held)})", highlight=False, soft_wrap=True)
    output = output or default_output(result, fmt, amass_smplh)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task(f"writing {output.name}", total=None)
        path = export_sequence(seq, output, fmt, body_spec=body, units=units, smplh=amass_smplh,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"wrote {path} ({fmt}, {seq.num_frames} frames at {seq.fps:g} fps)", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
