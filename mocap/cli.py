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


class _DefaultCommandGroup(_Group):
    """A group whose first argument may be a session instead of a sub-command: `mocap detect SESSION` runs
    the group's ``default_command``."""

    default_command = "run"

    def __init__(self, **kwargs) -> None:
        super().__init__(**{**kwargs, "subcommand_metavar": "SESSION [OPTIONS] | COMMAND [ARGS]..."})

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class _DefaultSessionGroup(_DefaultCommandGroup):
    default_command = "session"


detect_app = typer.Typer(cls=_DefaultCommandGroup, no_args_is_help=True, add_completion=False,
                         help="2D keypoints of every view: `mocap detect SESSION` runs BlazePose; import/export "
                              "exchange keypoints with OpenPose, Pose2Sim, EasyMocap, anipose.")
app.add_typer(detect_app, name="detect")


def _split_names(values: Optional[list[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [n for v in values for n in v.split(",") if n]


@detect_app.command("run")
def detect_run(
    session: Path = typer.Argument(..., help="Session folder."),
    force: bool = typer.Option(False, "--force", help="Detect again the views already in output/keypoints2d.h5."),
    views: Optional[list[str]] = typer.Option(None, "--views", help="Cameras to detect (repeat or comma-separate); default all."),
    complexity: int = typer.Option(1, "--complexity", help="BlazePose model complexity; only 1 ships with mediapipe."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Views detected at once, in threads (default: one per usable core)."),
) -> None:
    """BlazePose keypoints of every view into SESSION/output/keypoints2d.h5 (the default of `mocap detect SESSION`)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from mocap.detect.blazepose import DetectorConfig, check_model
    from mocap.detect.stage import detect_session
    from mocap.session import Session

    check_model(complexity)
    s = Session.load(session)
    config = DetectorConfig(model_complexity=complexity)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as bars:
        tasks: dict[str, int] = {}

        def progress(camera: str, done: int, total: int) -> None:
            if camera not in tasks:
                tasks[camera] = bars.add_task(camera, total=total)
            bars.update(tasks[camera], completed=done)

        result = detect_session(s, _split_names(views), force=force, config=config, workers=workers, progress=progress)
    for cam in result.skipped:
        console.print(f"{cam}: already detected (use --force to redo)")
    for cam, rate in result.detection_rate.items():
        console.print(f"{cam}: person found in {rate:.1%} of {s.num_frames} frames")
    console.print(f"wrote {result.path}" if result.detected else f"{result.path} is up to date")


@detect_app.command("import")
def detect_import(
    folder: Path = typer.Argument(..., help="Folder of another tool's keypoints (one sub-folder or file per camera)."),
    format: str = typer.Option(..., "--format", help="openpose (BODY_25 / COCO-18 JSON per frame) or coco (<camera>.json)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="A session folder (its output/keypoints2d.h5) or an .h5 file; default FOLDER/keypoints2d.h5."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frame rate, when OUTPUT is not a session."),
) -> None:
    """Read OpenPose or COCO keypoint JSON into the keypoints2d.h5 format."""
    from mocap.detect.openpose import import_keypoints
    from mocap.io.keypoints_h5 import write_keypoints
    from mocap.session import Session

    if output is not None and output.is_dir():
        s = Session.load(output)
        kp = import_keypoints(folder, format, num_frames=s.num_frames, fps=s.fps or fps or float("nan"),
                              image_sizes={v.camera: (v.info.width, v.info.height) for v in s.views}, cameras=s.cameras)
        path = s.output("keypoints")
    else:
        kp = import_keypoints(folder, format, fps=fps if fps is not None else float("nan"))
        path = output or folder / "keypoints2d.h5"
    write_keypoints(path, kp)
    for v, cam in enumerate(kp.cameras):
        console.print(f"{cam}: {kp.detected[:, v].mean():.1%} of {kp.num_frames} frames with a person")
    console.print(f"wrote {path} ({kp.format}, {len(kp.cameras)} cameras)")


@detect_app.command("export")
def detect_export(
    session: Path = typer.Argument(..., help="Session folder with output/keypoints2d.h5."),
    format: str = typer.Option("openpose", "--format", help="openpose (BODY_25 JSON, one file per frame and camera)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder; default SESSION/output/openpose."),
) -> None:
    """Write the session's keypoints as OpenPose JSON (read by Pose2Sim, EasyMocap, anipose)."""
    from mocap.detect.openpose import export_openpose
    from mocap.io.keypoints_h5 import read_keypoints
    from mocap.session import Session

    if format != "openpose":
        raise ConfigError(f"--format {format}: only openpose export is supported")
    s = Session.load(session)
    kp = read_keypoints(s.output("keypoints"))
    folders = export_openpose(kp, output or s.output_dir / "openpose")
    console.print(f"wrote {len(folders)} folders of {kp.num_frames} OpenPose files under {folders[0].parent}")


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
    # emoji=False: rich would draw frame ranges such as 0:100:5 as an emoji.
    result = run_demo(out, DemoSettings(overlays=overlays, real_sample=sample),
                      log=lambda line: console.print(line, highlight=False, markup=False, emoji=False), parts=parts)
    console.print(summary_markdown(result), highlight=False, markup=False, emoji=False)
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
# ---------------------------------------------------------------- calibrate


calibrate_app = typer.Typer(cls=_DefaultSessionGroup, no_args_is_help=True,
                            help="Calibrate cameras from board footage (mocap calibrate SESSION), or import/export "
                                 "another tool's calibration.")
app.add_typer(calibrate_app, name="calibrate")


def _parse_size(size: Optional[str]) -> Optional[tuple[int, int]]:
    if size is None:
        return None
    from mocap.errors import ConfigError

    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must be WIDTHxHEIGHT, e.g. 1920x1080; got {size!r}") from None
    return w, h


def _rig_table(rig, title: str) -> Table:
    table = Table(title=title)
    for col in ("camera", "size", "fx", "fy", "cx", "cy", "k1", "centre x, y (up), z (m)"):
        table.add_column(col)
    for c in rig:
        x, y, z = c.center
        table.add_row(c.name, f"{c.image_size[0]}x{c.image_size[1]}", f"{c.K[0, 0]:.1f}", f"{c.K[1, 1]:.1f}",
                      f"{c.K[0, 2]:.1f}", f"{c.K[1, 2]:.1f}", f"{c.dist[0]:+.3f}", f"{x:.2f}, {y:.2f}, {z:.2f}")
    return table


@calibrate_app.command("session")
def calibrate_session(
    session: Path = typer.Argument(..., help="Session folder with board footage in calibration/<camera>.<ext>."),
    board: Optional[str] = typer.Option(None, "--board", help="charuco (default) or checkerboard; overrides session.yaml."),
    rows: Optional[int] = typer.Option(None, "--rows", help="ChArUco squares along the board's height."),
    cols: Optional[int] = typer.Option(None, "--cols", help="ChArUco squares along the board's width."),
    square: Optional[float] = typer.Option(None, "--square", help="Square side, metres."),
    marker: Optional[float] = typer.Option(None, "--marker", help="ChArUco marker side, metres."),
    dictionary: Optional[str] = typer.Option(None, "--dict", help="ArUco dictionary, e.g. 4x4_50."),
    corners: Optional[str] = typer.Option(None, "--corners", help="Checkerboard inner corners ROWSxCOLS, e.g. 4x7."),
    origin_frame: Optional[int] = typer.Option(None, "--origin-frame",
                                               help="Put the world origin on the board at this frame (y up from its face)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Detect the board in every N-th frame."),
    max_intrinsic_frames: int = typer.Option(60, "--max-intrinsic-frames", min=6,
                                             help="Frames per camera (evenly spread) for the first intrinsics."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output TOML (default SESSION/calibration.toml)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write output/calibration_top_view.png."),
) -> None:
    """Detect the board in every camera, calibrate intrinsics and bundle-adjust all cameras, write calibration.toml."""
    import aniposelib
    import cv2
    from rich.progress import Progress

    from mocap.calib.board import Board
    from mocap.calib.calibrate import calibrate_rig
    from mocap.calib.footage import detect_session, session_footage
    from mocap.calib.report import assess
    from mocap.config import BoardConfig, load_config, to_dict
    from mocap.errors import MissingDependencyError
    from mocap.io.calibration_toml import save_rig

    out = output or Path(session) / "calibration.toml"
    if output is None and out.is_file():
        import tomllib

        from mocap.errors import ConfigError

        try:
            generator = tomllib.loads(out.read_text()).get("metadata", {}).get("generator")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            generator = None  # not ours to judge: it is replaced like any earlier calibration
        if generator == "mocap synth":
            raise ConfigError(f"{out} is the true rig of a synthetic session; pass -o to write the calibration "
                              "elsewhere and compare the two (tools/compare_rigs.py)")
    config, footage, sizes = session_footage(session)
    flags = {k: v for k, v in dict(type=board, rows=rows, cols=cols, square=square, marker=marker, dict=dictionary,
                                   corners=corners).items() if v is not None}
    board_cfg = load_config(BoardConfig, flags, "command-line board options", base=config.board)
    b = Board(board_cfg)
    console.print(f"board: {b.describe()}; cameras: {', '.join(footage)}")
    with Progress(console=console, transient=True) as bar:
        tasks = {name: bar.add_task(f"detect {name}", total=None) for name in footage}
        detections = detect_session(b, footage, sizes, stride,
                                    progress=lambda name, d, t: bar.update(tasks[name], completed=d, total=t))
        task = bar.add_task("calibrate", total=None)
        cal = calibrate_rig(detections, b, origin_frame=origin_frame, max_intrinsic_frames=max_intrinsic_frames,
                            progress=lambda d, t: bar.update(task, completed=d, total=t))
    report = assess(cal)
    table = Table(title=f"Calibration of {session}")
    for col in ("camera", "board frames", "corners", "mean px", "p95 px", "verdict", "fx", "cx, cy"):
        table.add_column(col)
    colour = {"good": "green", "fair": "yellow", "poor": "red"}
    for st, cam in zip(report.cameras, cal.rig):
        table.add_row(st.camera, str(st.frames), str(st.corners), f"{st.mean_px:.2f}", f"{st.p95_px:.2f}",
                      f"[{colour[st.verdict]}]{st.verdict}[/]", f"{cam.K[0, 0]:.1f}", f"{cam.K[0, 2]:.1f}, {cam.K[1, 2]:.1f}")
    console.print(table)
    for w in report.warnings:
        console.print(f"[yellow]warning[/] {w}")
    if cal.outliers:
        console.print(f"{cal.outliers} corner detections dropped as outliers")
    meta = {"created_by": f"mocap {__version__} calibrate", "opencv": cv2.__version__, "aniposelib": aniposelib.__version__,
            "board": to_dict(board_cfg), "world": cal.world, "origin_frame": -1 if origin_frame is None else origin_frame,
            "adjusted": True, **report.to_metadata()}
    save_rig(cal.rig, out, meta)
    console.print(f"wrote {out} (world: {cal.world}); mean reprojection error {report.mean_px:.2f} px")
    if plot:
        from mocap.viz.calibration_plot import plot_top_view

        png = Path(session) / "output" / "calibration_top_view.png"
        try:
            plot_top_view(cal.rig, cal.points, png, f"{Path(session).name}: cameras and board from above")
            console.print(f"wrote {png}")
        except MissingDependencyError as e:
            console.print(f"[yellow]warning[/] no plot: {e}")


def _check_sizes_against_session(rig, folder: Path) -> None:
    """Warn when a camera's calibrated image size differs from its video in a session next to the output."""
    from mocap.io.video import VIDEO_EXTS, probe

    videos = folder / "videos"
    if not videos.is_dir():
        return
    for cam in rig:
        for p in (videos / f"{cam.name}{ext}" for ext in VIDEO_EXTS):
            if p.is_file():
                info = probe(p)
                if (info.width, info.height) != cam.image_size:
                    console.print(f"[yellow]warning[/] {cam.name}: calibrated for {cam.image_size[0]}x{cam.image_size[1]} "
                                  f"but {p.relative_to(folder)} is {info.width}x{info.height}; check how the video was "
                                  "cropped or scaled before trusting the principal point")


@calibrate_app.command("import")
def calibrate_import(
    file: Path = typer.Argument(..., help="The other tool's calibration (EasyMocap: intri.yml, extri.yml or their folder)."),
    from_: str = typer.Option(..., "--from", help="qualisys, anipose, easymocap or opencv."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output TOML (default calibration.toml in the session holding FILE)."),
    size: Optional[str] = typer.Option(None, "--size", help="Image size WIDTHxHEIGHT when the file lacks it."),
    binning: int = typer.Option(1, "--binning", min=1, help="Qualisys: pixel binning of the recorded video."),
    units: str = typer.Option("m", "--units", help="Lengths in the file: m or mm (anipose, easymocap, opencv)."),
    up: Optional[str] = typer.Option(None, "--up", help="The file's up axis, y or z (default: z for easymocap, else y)."),
) -> None:
    """Convert another tool's calibration to calibration.toml (anipose format, metres, y up)."""
    from mocap.calib.convert import import_rig
    from mocap.errors import InputDataError
    from mocap.io.calibration_toml import file_sha256, save_rig

    rig = import_rig(file, from_, _parse_size(size), binning, units, up)
    if output is None:
        parent = file if file.is_dir() else file.parent
        output = (parent.parent if parent.name == "calibration" else parent) / "calibration.toml"
    if file.exists() and output.resolve() == file.resolve():
        raise InputDataError(f"{output}: would overwrite the file being imported; pass -o elsewhere")
    source = file if file.is_file() else file / "intri.yml"
    save_rig(rig, output, {"created_by": f"mocap {__version__} calibrate import", "imported_from": str(file),
                           "format": from_, "source_sha256": file_sha256(source) if source.is_file() else ""})
    console.print(_rig_table(rig, f"Imported {file} ({from_})"))
    _check_sizes_against_session(rig, output.parent)
    console.print(f"wrote {output}")


@calibrate_app.command("export")
def calibrate_export(
    file: Path = typer.Argument(..., help="calibration.toml to export."),
    to: str = typer.Option(..., "--to", help="anipose, easymocap or opencv."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output (EasyMocap: a folder for intri.yml and extri.yml)."),
    up: Optional[str] = typer.Option(None, "--up", help="Up axis of the output world, y or z (default: z for easymocap)."),
) -> None:
    """Write calibration.toml in another tool's format."""
    from mocap.calib.convert import export_rig
    from mocap.io.calibration_toml import load_rig

    rig = load_rig(file)
    default = {"anipose": file.with_name(f"{file.stem}_anipose.toml"), "easymocap": file.parent / "easymocap",
               "opencv": file.with_suffix(".yml")}
    written = export_rig(rig, output or default.get(to, file.with_suffix(".out")), to, up)
    for p in written:
        console.print(f"wrote {p}")


# ---------------------------------------------------------------- synth and eval


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


# ---------------------------------------------------------------- run and shape


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
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="ReFit checkpoint_best.pth.tar (pipelines refit, refit+keypoints)."),
) -> None:
    """Fit the body to every frame: writes output/smpl.npz (world frame, AMASS-style) with per-frame quality."""
    import time

    import numpy as np

    from mocap.fitting.run import run_session
    from mocap.fitting.sequence import FLAGS
    from mocap.fitting.swaps import swap_counts

    bar, progress = _progress("fitting")
    start = time.perf_counter()
    with bar:
        result, out = run_session(session, views, shape, pipeline, combine, debug, progress, checkpoint=checkpoint)
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
    if result.swaps is not None:
        for cam, kinds in swap_counts(result.swaps, result.cameras).items():
            console.print(f"{cam}: left and right keypoints relabelled in {sum(kinds.values())} frames "
                          "(the detector swapped them)")
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
