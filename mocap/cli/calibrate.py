"""`mocap calibrate`: cameras from board footage, or another tool's calibration in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mocap import __version__
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
    import aniposelib
    import cv2
    from rich.text import Text

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
    bar, _ = progress_bar("board")
    with bar:
        detections = detect_session(b, footage, sizes, stride, progress=lambda name, d, t: bar.update(f"detect {name}", d, t))
    bar, progress = progress_bar("calibrate", unit="steps")
    with bar:
        cal = calibrate_rig(detections, b, origin_frame=origin_frame, max_intrinsic_frames=max_intrinsic_frames,
                            progress=progress)
    report = assess(cal)
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
            warn(f"no plot: {e}")


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
