"""`mocap info`: what a session holds and what it lacks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mocap.cli._base import app, console, styled, warn, yes_no
from mocap.errors import MocapError



@app.command()
def info(session: Path = typer.Argument(..., help="Session folder.")) -> None:
    """Cameras, frames, fps, resolution, calibration status and outputs of a session."""
    from mocap.session import OUTPUTS, Session

    s = Session.load(session)
    calibrated, notes = set(), []
    if s.calibration_path.is_file():
        from mocap.io.calibration_toml import load_rig

        calibrated = set(load_rig(s.calibration_path).names)
        try:
            notes = s.check_calibration()
        except MocapError as e:  # info shows what `detect` and `run` would refuse, and goes on
            notes = [str(e)]
    footage = s.calibration_footage()
    table = Table(title=f"Session {s.root}")
    for col in ("camera", "source", "frames", "fps", "resolution", "calibrated", "board footage"):
        table.add_column(col)
    for v in s.views:
        fps = f"{v.info.fps:g}" if v.info.fps else "-"
        table.add_row(v.camera, str(v.info.path.relative_to(s.root)), str(v.info.frames), fps,
                      f"{v.info.width}x{v.info.height}", yes_no(v.camera in calibrated), yes_no(v.camera in footage))
    console.print(table)
    fps = f"{s.fps:g} fps (from {s.fps_source})" if s.fps else "fps unknown (image folders: set fps in session.yaml)"
    console.print(f"{len(s.views)} cameras, {s.num_frames} frames, {fps}; body model: {s.config.body}")
    for name, rel in OUTPUTS.items():
        console.print(f"  {rel}: {yes_no((s.root / rel).is_file())}")
    for item in s.missing():
        console.print(styled("missing", "yellow", item))
    for note in notes:
        warn(note)


@app.command()
def init(
    session: Path = typer.Argument(..., help="Session folder to create (or complete)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing session.yaml."),
) -> None:
    """Start a session: the folders mocap reads and writes, and a session.yaml with every key commented out."""
    from mocap.config import SessionConfig, commented_yaml
    from mocap.errors import ConfigError
    from mocap.io.atomic import ensure_folder, write_text

    yaml_path = session / "session.yaml"
    if yaml_path.exists() and not force:
        raise ConfigError(f"{yaml_path} exists; pass --force to replace it")
    folders = [session / name for name in ("videos", "calibration", "output")]
    for folder in folders:
        ensure_folder(folder)
    header = [f"# {SessionConfig.__doc__}",
              "# Each key below is at its default; uncomment a line (remove the first '# ') to change it.", ""]
    write_text(yaml_path, "\n".join(header + commented_yaml(SessionConfig)) + "\n")
    console.print(f"wrote {yaml_path}; made {', '.join(f.name + '/' for f in folders)}")
    console.print(f"next: videos in {folders[0]}/<camera>.mp4, board footage in {folders[1]}/<camera>.mp4, "
                  f"then `mocap info {session}`")
