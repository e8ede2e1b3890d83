"""`mocap demo`: the whole chain on the bundled samples."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mocap.cli._base import app, console
from mocap.errors import ConfigError



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
