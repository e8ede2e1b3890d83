"""`mocap batch` as one function: find the sessions, run the steps locally or on Ray, write the summary."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mocap.batch.pool import OnEvent, run_pool, usable_cores
from mocap.batch.sessions import DEFAULT_STEPS, discover, parse_steps
from mocap.batch.summary import exit_code, write_summary
from mocap.batch.worker import SessionRecord
from mocap.errors import ConfigError


@dataclass
class BatchResult:
    records: list[SessionRecord]
    steps: tuple[str, ...]
    wall_s: float
    summary: tuple[Path, Path]
    runner: str

    @property
    def exit_code(self) -> int:
        return exit_code(self.records)


def run_batch(patterns: Sequence[str], steps: str = DEFAULT_STEPS, workers: int | None = None,
              ray: bool = False, address: str | None = None, force: bool = False,
              summary: str | os.PathLike = "batch_summary.csv", on_event: OnEvent | None = None,
              ray_per: str = "session", sessions: Sequence[Path] | None = None) -> BatchResult:
    """Run ``steps`` on every session of ``patterns`` (or the given ``sessions``) and write the summary.

    Locally ``workers`` processes (default one per usable core); with ``ray``, Ray tasks on the cluster at
    ``address`` or on a local Ray of ``workers`` CPUs (default all)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: give 1 or more")
    step_list = parse_steps(steps)
    found = list(sessions) if sessions is not None else discover(patterns)
    labels = [str(s) for s in found]
    start = time.perf_counter()
    if ray:
        from mocap.batch.cluster import run_ray

        records = run_ray(found, step_list, force, address, workers, ray_per, on_event, labels=labels)
        runner = f"ray {address or 'local'} (one task per {ray_per})"
    else:
        records = run_pool(found, step_list, force, workers, on_event, labels=labels)
        runner = f"local pool of {max(1, min(workers or usable_cores(), len(found)))} processes"
    wall = time.perf_counter() - start
    paths = write_summary(records, step_list, Path(summary),
                          {"runner": runner, "wall_s": round(wall, 2), "force": force})
    return BatchResult(records, step_list, wall, paths, runner)
