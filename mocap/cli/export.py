"""`mocap export`: an SMPL sequence for other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mocap.cli._base import app, console, err_console, frame_ranges, progress_bar, styled, warn
from mocap.errors import ConfigError, about



@app.command()
def export(
    result: Path = typer.Argument(..., help="SMPL sequence: `mocap run`'s output/smpl.npz, or an AMASS-style npz (with --body)."),
    fmt: Optional[str] = typer.Option(None, "--fmt", help="npz | h5 | bvh | fbx | glb | trc | c3d (default: from -o's suffix)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (default: RESULT's name, new suffix)."),
    amass_smplh: bool = typer.Option(False, "--amass-smplh", help="npz/h5: AMASS's SMPL-H layout (156 poses, hands zero; 16 betas; zero dmpls)."),
    up: str = typer.Option("y", "--up", help="Up axis of the written world: y (mocap, OpenSim) or z (AMASS); npz, h5, bvh, trc, c3d."),
    points: str = typer.Option("markers", "--points", help="trc/c3d: markers (67 surface markers), joints (24), or a keypoint layout (body25, blazepose33, coco17, coco18)."),
    units: str = typer.Option("m", "--units", help="bvh: m or cm."),
    body: Optional[str] = typer.Option(None, "--body", help="Body model: open, smpl or a file (default: the sequence's; needed for AMASS files)."),
    gender: Optional[str] = typer.Option(None, "--gender", help="neutral, male or female (default: the file's)."),
    input_up: Optional[str] = typer.Option(None, "--input-up", help="Up axis of RESULT's world when the file does not say (default: detected)."),
) -> None:
    """Export an SMPL sequence as AMASS-style npz/h5, BVH, FBX (needs the fbx extra), GLB, TRC or C3D.

    Frames with NaN values hold the last valid pose (a warning says which), so frame i stays at time i/fps.
    """
    from mocap.io.amass import load_motion
    from mocap.io.export import FORMATS, default_output, export_sequence
    from mocap.io.smpl_npz import hold_invalid_frames

    if fmt is None:
        if output is None:
            raise ConfigError(f"give --fmt ({', '.join(FORMATS)}) or an output file with -o")
        fmt = next((f for f, suffixes in FORMATS.items() if output.suffix.lower() in suffixes), None)
        if fmt is None:
            raise ConfigError(f"{output}: cannot tell the format from the suffix; give --fmt")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    seq, notes = load_motion(result, body=body, gender=gender, up=input_up)
    for note in notes:
        err_console.print(styled("note:", "yellow", note), soft_wrap=True)
    with about(result):
        seq, held = hold_invalid_frames(seq)
    if held.any():
        warn(f"{result}: {int(held.sum())} of {seq.num_frames} frames had NaN values and hold the last valid pose "
             f"(frames {frame_ranges(held)})")
    output = output or default_output(result, fmt, amass_smplh)
    bar, progress = progress_bar(f"writing {output.name}", unit="steps")
    with bar:
        path = export_sequence(seq, output, fmt, body_spec=body, units=units, smplh=amass_smplh, up=up, points=points,
                               progress=progress)
    console.print(f"wrote {path} ({fmt}, {seq.num_frames} frames at {seq.fps:g} fps, {up}-up)")
