"""`mocap detect`: BlazePose keypoints, and keypoint exchange with other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mocap.cli._base import DefaultCommandGroup, split_names, app, console
from mocap.errors import ConfigError



detect_app = typer.Typer(cls=DefaultCommandGroup, no_args_is_help=True, add_completion=False,
                         help="2D keypoints of every view: `mocap detect SESSION` runs BlazePose; import/export "
                              "exchange keypoints with OpenPose, Pose2Sim, EasyMocap, anipose.")
app.add_typer(detect_app, name="detect")


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

        result = detect_session(s, split_names(views), force=force, config=config, workers=workers, progress=progress)
    for cam in result.skipped:
        console.print(f"{cam}: already detected (use --force to redo)")
    for cam, rate in result.detection_rate.items():
        console.print(f"{cam}: person found in {rate:.1%} of {s.num_frames} frames")
    console.print(f"wrote {result.path}" if result.detected else f"{result.path} is up to date")


def _footageless_session(root: Path) -> tuple[float | None, dict[str, tuple[int, int]]]:
    """The fps of ``root/session.yaml`` and the image sizes of ``root/calibration.toml``, each when present."""
    from mocap.config import SessionConfig, load_config, read_yaml
    from mocap.io.calibration_toml import load_rig

    yaml_path = root / "session.yaml"
    fps = load_config(SessionConfig, read_yaml(yaml_path), yaml_path.name).fps if yaml_path.is_file() else None
    calibration = root / "calibration.toml"
    sizes = {c.name: c.image_size for c in load_rig(calibration).cameras} if calibration.is_file() else {}
    return fps, sizes


@detect_app.command("import")
def detect_import(
    folder: Path = typer.Argument(..., help="Folder of another tool's keypoints (one sub-folder or file per camera)."),
    format: str = typer.Option(..., "--format", help="openpose (BODY_25 / COCO-18 / BlazePose-33 JSON per frame) or coco (<camera>.json)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="A session folder (its output/keypoints2d.h5) or an .h5 file; default FOLDER/keypoints2d.h5."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frame rate, when OUTPUT is not a session."),
) -> None:
    """Read OpenPose or COCO keypoint JSON into the keypoints2d.h5 format, every person of every frame."""
    from mocap.detect.openpose import import_keypoints
    from mocap.io.keypoints_h5 import write_keypoints
    from mocap.session import OUTPUTS, Session

    if output is not None and output.is_dir() and not (output / "videos").is_dir() and not (output / "images").is_dir():
        # A session without footage (e.g. `mocap synth` without --render): the files' own frames, the fps of
        # session.yaml and the image sizes of calibration.toml when they are there.
        fps_, sizes = _footageless_session(output)
        det = import_keypoints(folder, format, fps=fps or fps_ or float("nan"), image_sizes=sizes)
        path = output / OUTPUTS["keypoints"]
    elif output is not None and output.is_dir():
        s = Session.load(output)
        det = import_keypoints(folder, format, num_frames=s.num_frames, fps=s.fps or fps or float("nan"),
                               image_sizes={v.camera: (v.info.width, v.info.height) for v in s.views}, cameras=s.cameras)
        path = s.output("keypoints")
    else:
        det = import_keypoints(folder, format, fps=fps if fps is not None else float("nan"))
        path = output or folder / "keypoints2d.h5"
    write_keypoints(path, det)
    people = det.present.sum(axis=2)
    for v, cam in enumerate(det.cameras):
        console.print(f"{cam}: {(people[:, v] > 0).mean():.1%} of {det.num_frames} frames with a person, "
                      f"up to {people[:, v].max()} in one frame")
    console.print(f"wrote {path} ({det.format}, {len(det.cameras)} cameras)")


@detect_app.command("export")
def detect_export(
    session: Path = typer.Argument(..., help="Session folder with output/keypoints2d.h5."),
    format: str = typer.Option("openpose", "--format", help="openpose (JSON, one file per frame and camera)."),
    layout: Optional[str] = typer.Option(None, "--layout", help="body25, coco18, or blazepose33 for BlazePose keypoints "
                                         "(no made-up points; Pose2Sim's BlazePose skeleton); default body25."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder; default SESSION/output/openpose."),
) -> None:
    """Write the session's keypoints, every person, as OpenPose JSON (read by Pose2Sim, EasyMocap, anipose)."""
    from mocap.detect.openpose import export_openpose
    from mocap.io.keypoints_h5 import read_detections
    from mocap.session import OUTPUTS

    if format != "openpose":
        raise ConfigError(f"--format {format}: only openpose export is supported")
    det = read_detections(session / OUTPUTS["keypoints"])  # the keypoints are all it needs: no footage required
    folders = export_openpose(det, output or session / "output" / "openpose", layout)
    console.print(f"wrote {len(folders)} folders of {det.num_frames} OpenPose files under {folders[0].parent} "
                  f"({det.format} keypoints, recorded as keypoint_source)")
