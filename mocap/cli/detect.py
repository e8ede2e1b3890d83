"""`mocap detect`: BlazePose keypoints, and keypoint exchange with other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mocap.cli._base import DefaultCommandGroup, app, console, progress_bar, split_names
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
    max_people: int = typer.Option(4, "--max-people", help="Most people found per view and frame; 1 = the one-person tracker."),
    masks: bool = typer.Option(True, "--masks/--no-masks", help="Store each person's segmentation mask (128 x 128, cropped to the person)."),
) -> None:
    """BlazePose keypoints (and masks) of every person in every view into SESSION/output/keypoints2d.h5
    (the default of `mocap detect SESSION`)."""
    from mocap.detect.blazepose import DetectorConfig, check_model
    from mocap.detect.stage import detect_session
    from mocap.session import Session

    check_model(complexity, max_people)
    s = Session.load(session)
    config = DetectorConfig(model_complexity=complexity, max_people=max_people, masks=masks)
    bar, _ = progress_bar("detect")
    with bar:
        result = detect_session(s, split_names(views), force=force, config=config, workers=workers, progress=bar.update)
    for cam in result.skipped:
        console.print(f"{cam}: already detected (use --force to redo)")
    for cam, rate in result.detection_rate.items():
        mean, most = result.people[cam]
        console.print(f"{cam}: person found in {rate:.1%} of {s.num_frames} frames; "
                      f"{mean:.2f} people per frame on average, at most {most}")
    for cam, (looked, found) in result.guided.items():
        if looked:
            console.print(f"{cam}: looked again at {looked} places where the other views put a person it missed; "
                          f"found {found}")
    console.print(f"wrote {result.path}" if result.detected else f"{result.path} is up to date")


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
    from mocap.session import Session

    if output is not None and output.is_dir():
        s = Session.load(output, footage=False)  # keypoints need no footage (e.g. `mocap synth` sessions)
        det = import_keypoints(folder, format, num_frames=s.num_frames or None, fps=s.fps or fps or float("nan"),
                               image_sizes=s.image_sizes(), cameras=s.cameras or None)
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
    from mocap.session import Session

    if format != "openpose":
        raise ConfigError(f"--format {format}: only openpose export is supported")
    s = Session.load(session, footage=False)
    det = read_detections(s.output("keypoints"))
    folders = export_openpose(det, output or s.output_dir / "openpose", layout)
    console.print(f"wrote {len(folders)} folders of {det.num_frames} OpenPose files under {folders[0].parent} "
                  f"({det.format} keypoints, recorded as keypoint_source)")
