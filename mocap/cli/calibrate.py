"""`mocap calibrate`: cameras from board footage, or another tool's calibration in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mocap.cli._base import DefaultSessionGroup, app, console, progress_bar, warn



calibrate_app = typer.Typer(cls=DefaultSessionGroup, no_args_is_help=True,
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
    from rich.text import Text

    from mocap.calib.stage import calibrate_session

    flags = {k: v for k, v in dict(type=board, rows=rows, cols=cols, square=square, marker=marker, dict=dictionary,
                                   corners=corners).items() if v is not None}
    def start(b, cameras: list[str]) -> None:
        console.print(f"board: {b.describe()}; cameras: {', '.join(cameras)}")

    bar, _ = progress_bar("calibrate", unit="steps")
    with bar:
        run = calibrate_session(session, flags, origin_frame, stride, max_intrinsic_frames, output, plot, on_start=start,
                                detect_progress=lambda name, d, t: bar.update(f"detect {name}", d, t),
                                calibrate_progress=bar)
    cal, report = run.calibration, run.report
    table = Table(title=f"Calibration of {session}")
    for col in ("camera", "board frames", "corners", "mean px", "p95 px", "verdict", "fx", "cx, cy"):
        table.add_column(col)
    colour = {"good": "green", "fair": "yellow", "poor": "red"}
    for st, cam in zip(report.cameras, cal.rig):
        table.add_row(st.camera, str(st.frames), str(st.corners), f"{st.mean_px:.2f}", f"{st.p95_px:.2f}",
                      Text(st.verdict, colour[st.verdict]), f"{cam.K[0, 0]:.1f}", f"{cam.K[0, 2]:.1f}, {cam.K[1, 2]:.1f}")
    console.print(table)
    for w in report.warnings:
        warn(w)
    if cal.outliers:
        console.print(f"{cal.outliers} corner detections dropped as outliers")
    console.print(f"wrote {run.path} (world: {cal.world}); mean reprojection error {report.mean_px:.2f} px")
    if run.plot:
        console.print(f"wrote {run.plot}")
    elif run.plot_error:
        warn(f"no plot: {run.plot_error}")


def _check_against_session(rig, output: Path) -> None:
    """Warn when the imported world is not y up, or a camera's calibrated image size differs from its video in
    a session next to the output (`mocap.calib.checks`; `detect` and `run` refuse what cannot be adapted)."""
    from mocap.calib.checks import conform_rig, up_problem
    from mocap.errors import MocapError
    from mocap.io.video import VIDEO_EXTS, probe

    videos = output.parent / "videos"
    sizes = {}
    for cam in rig if videos.is_dir() else ():
        for p in (videos / f"{cam.name}{ext}" for ext in VIDEO_EXTS):
            if p.is_file():
                info = probe(p)
                sizes[cam.name] = (info.width, info.height)
    try:
        notes = conform_rig(rig, sizes, output, "video")[1]
    except MocapError as e:
        notes = [str(e)]
    up = up_problem(rig, output)
    for note in notes + ([up] if up else []):
        warn(note)


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
    from mocap.calib.stage import import_calibration

    rig, output = import_calibration(file, from_, _parse_size(size), binning, units, up, output)
    console.print(_rig_table(rig, f"Imported {file} ({from_})"))
    _check_against_session(rig, output)
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
