"""`mocap batch`: the single commands' steps over many sessions, on local processes or a Ray cluster."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from mocap.cli._base import app, console, err_console
from mocap.errors import ConfigError


_ADDRESS = re.compile(r"^(auto|ray://\S+|[\w.-]+:\d+)$")


class _OptionalRayAddress(typer.core.TyperCommand):
    """``--ray`` alone starts a local Ray; ``--ray ADDRESS`` (HOST:PORT, ray://..., auto) joins a cluster. A
    word after ``--ray`` that is no address stays a session."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = [("--ray=local" if a == "--ray" and (i + 1 == len(args) or not _ADDRESS.match(args[i + 1])) else a)
                for i, a in enumerate(args)]
        return super().parse_args(ctx, args)


def _progress(total: int):
    """``on_event`` printing a line per finished session with the batch's ETA, under a progress bar on a terminal
    (plain lines otherwise, e.g. in a log file); returns (context manager, on_event)."""
    from contextlib import nullcontext

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    start, done = time.perf_counter(), [0]
    bar = Progress("sessions", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), "ETA", TimeRemainingColumn(),
                   console=err_console, transient=True) if err_console.is_terminal else None
    task = bar.add_task("sessions", total=total) if bar else None

    def on_event(kind: str, index: int, payload) -> None:
        if kind == "retry":
            err_console.print(f"session {index + 1}: its worker died (exit code {payload}); trying again",
                              highlight=False)
        if kind != "done":
            return
        done[0] += 1
        elapsed = time.perf_counter() - start
        eta = elapsed / done[0] * (total - done[0])
        colour = "green" if payload.status == "ok" else "red"
        err_console.print(Text.assemble(f"[{done[0]}/{total}] ", (payload.status, colour), f" {payload.session}"
                                        f"{': ' + payload.error if payload.error else ''}  ({elapsed:.0f} s, ETA {eta:.0f} s)"),
                          soft_wrap=True)
        if bar:
            bar.update(task, completed=done[0])

    return bar or nullcontext(), on_event


def _table(result) -> Table:
    table = Table(title=f"mocap batch: {len(result.records)} sessions in {result.wall_s:.1f} s ({result.runner})")
    for col in ("session", "status", *result.steps, "frames", "reprojection px (mean per view)", "people", "error"):
        table.add_column(col)
    names = [Path(r.session).name for r in result.records]
    short = len(set(names)) == len(names)  # the folder names alone, when they tell the sessions apart
    for name, r in zip(names, result.records):
        by_step = {s.step: s for s in r.steps}
        cells = []
        for step in result.steps:
            s = by_step.get(step)
            cells.append("-" if s is None or s.status == "not run" else
                         f"{s.status} {s.wall_s:.1f} s" if s.status != "failed" else Text("failed", "red"))
        table.add_row(name if short else r.session, Text("ok", "green") if r.status == "ok" else Text("failed", "red"), *cells,
                      "" if r.frames is None else str(r.frames),
                      " ".join(f"{e:.1f}" for e in r.reprojection_px.values()), str(r.people), r.error)
    return table


@app.command(cls=_OptionalRayAddress)
def batch(
    sessions: list[str] = typer.Argument(..., help="Session folders, folders holding sessions, or globs."),
    steps: str = typer.Option("detect,run,report", "--steps",
                              help="Comma list of calibrate, detect, shape, run, export:FMT, overlay, report."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Sessions at once (default: one per usable core; "
                                                                   "with --ray and no address: the local Ray's CPUs)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]",
                                      help="Run on Ray: alone, a local Ray; --ray HOST:PORT joins that cluster."),
    force: bool = typer.Option(False, "--force", help="Redo steps whose outputs are up to date."),
    summary: Path = typer.Option(Path("batch_summary.csv"), "--summary", help="CSV summary (a .json beside it)."),
) -> None:
    """Run steps on many sessions: a failing session is recorded and the others go on; done steps are skipped.

    Exit code 0 when every session succeeded, 2 when any failed; the summary is written either way.
    """
    from mocap.batch.runner import run_batch
    from mocap.batch.sessions import discover

    found = discover(sessions)
    if ray is not None and ray != "local" and Path(ray).is_dir():
        raise ConfigError(f"--ray {ray}: that is a folder; put --ray after the sessions, or give HOST:PORT")
    bar, on_event = _progress(len(found))
    with bar:
        result = run_batch(sessions, steps, workers, ray is not None, None if ray in (None, "local") else ray, force,
                           summary, on_event, sessions=found)
    console.print(_table(result))
    console.print(f"wrote {result.summary[0]} and {result.summary[1]}")
    raise typer.Exit(result.exit_code)
