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


@app.command()
def synth(
    out: Path = typer.Argument(..., help="New session folder to write."),
    cameras: int = typer.Option(4, help="Cameras on the ring, 2-12."),
    frames: int = typer.Option(120, help="Frames of motion."),
    fps: float = typer.Option(60.0, help="Frame rate."),
    motion: str = typer.Option("walk", help="walk, squat, jumping_jacks, arm_raise, turn or mixed."),
    noise: float = typer.Option(3.0, help="Gaussian keypoint noise, px."),
    outliers: float = typer.Option(0.05, help="Share of keypoints made gross outliers (incl. left/right swaps)."),
    occlusion: float = typer.Option(0.1, help="Share of keypoints occluded (dropped or low confidence)."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same session."),
    body: str = typer.Option("open", help="Body model: open, smpl, or a path to SMPL files."),
    render: bool = typer.Option(False, "--render", help="Also render videos and ChArUco calibration footage."),
    board_frames: int = typer.Option(120, help="Frames of board footage per camera (with --render)."),
) -> None:
    """Write a synthetic session whose truth is known: rig, motion, 2D keypoints (and footage with --render)."""
    import time

    from rich.progress import Progress

    from mocap.synth.session import SynthConfig, synthesize

    cfg = SynthConfig(cameras=cameras, frames=frames, fps=fps, motion=motion, noise=noise, outliers=outliers,
                      occlusion=occlusion, seed=seed, body=body, render=render, board_frames=board_frames)
    start = time.perf_counter()
    with Progress(console=err_console, transient=True, disable=not render) as bar:
        task = bar.add_task("rendering", total=None)
        result = synthesize(out, cfg, progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"wrote {result.root}: {len(result.rig)} cameras, {frames} frames of {motion} "
                  f"in {time.perf_counter() - start:.1f} s")
    for f in result.files:
        console.print(f"  {f.relative_to(result.root)}")


@app.command("eval")
def eval_(
    result: Path = typer.Argument(..., help="Motion to evaluate: our npz, AMASS npz, or SPIN/ReFit npz (pose, shape, trans)."),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth npz (e.g. a synthetic session's ground_truth.npz)."),
    offset: int = typer.Option(0, help="Result frame i is ground-truth frame i + OFFSET."),
    body: Optional[str] = typer.Option(None, help="Body model for both files instead of the ones they name."),
    gt_body: Optional[str] = typer.Option(None, help="Body model for the ground truth only."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the numbers (mm) to this JSON file."),
    plot: Optional[Path] = typer.Option(None, help="Draw per-joint errors and errors over time to this PNG."),
) -> None:
    """Compare a body motion with ground truth: MPJPE, PA-MPJPE, PVE, global error, acceleration, per joint."""
    import json

    from mocap.eval.evaluate import evaluate_files
    from mocap.io.atomic import write_text

    m = evaluate_files(result, gt, offset=offset, body=body, gt_body=gt_body)

    def mm(v):
        return "-" if v is None else f"{v:.1f}"

    table = Table(title=f"{result.name} vs {gt.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, v, unit in (("MPJPE (pelvis-aligned)", m.mpjpe, "mm"), ("PA-MPJPE", m.pa_mpjpe, "mm"),
                           ("PVE", m.pve, "mm"), ("global MPJPE", m.global_mpjpe, "mm"),
                           ("acceleration error", m.accel_error, "mm/frame^2")):
        table.add_row(label, f"{mm(v)} {unit}")
    table.add_row("frames evaluated", f"{len(m.frames)} ({100 * m.frames_evaluated:.0f} %)")
    console.print(table)
    joints = Table(title="per-joint MPJPE (mm)")
    for col in ("joint", "mm", "joint ", "mm "):
        joints.add_column(col, justify="right" if col.startswith("mm") else "left")
    items = list(m.per_joint.items())
    half = (len(items) + 1) // 2
    for (n1, v1), right in zip(items[:half], items[half:] + [("", None)]):
        joints.add_row(n1, mm(v1), right[0], mm(right[1]) if right[0] else "")
    console.print(joints)
    for note in m.notes:
        console.print(f"[yellow]note[/] {note}")
    if json_out is not None:
        write_text(json_out, json.dumps(m.summary(), indent=2) + "\n")
        console.print(f"wrote {json_out}")
    if plot is not None:
        from mocap.eval.plot import plot_metrics

        plot_metrics(m, plot, title=f"{result.name} vs {gt.name}")
        console.print(f"wrote {plot}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
