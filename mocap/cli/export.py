"""`mocap export`: an SMPL sequence for other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mocap.cli._base import frame_ranges, app, console, progress_bar, warn
from mocap.errors import ConfigError



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
        warn(f"{result}: {int(held.sum())} of {seq.num_frames} frames had NaN values and hold the last valid pose "
             f"(frames {frame_ranges(held)})")
    output = output or default_output(result, fmt, amass_smplh)
    bar, progress = progress_bar(f"writing {output.name}")
    with bar:
        path = export_sequence(seq, output, fmt, body_spec=body, units=units, smplh=amass_smplh, progress=progress)
    console.print(f"wrote {path} ({fmt}, {seq.num_frames} frames at {seq.fps:g} fps)")
