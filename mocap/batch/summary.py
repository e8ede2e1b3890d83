"""The batch's records as ``batch_summary.csv`` (one row per session) and ``batch_summary.json``."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from mocap.batch.worker import SessionRecord
from mocap.io.atomic import write_text


def rows(records: Sequence[SessionRecord], steps: Sequence[str]) -> list[dict]:
    """One flat row per session: status, each step's status / wall / CPU seconds, frames, reprojection, people."""
    out = []
    for r in records:
        row = {"session": r.session, "status": r.status, "attempts": r.attempts, "host": r.host}
        by_step = {s.step: s for s in r.steps}
        for step in steps:
            s = by_step.get(step)
            row[f"{step} status"] = s.status if s else "not run"
            row[f"{step} wall s"] = round(s.wall_s, 2) if s else ""
            row[f"{step} cpu s"] = round(s.cpu_s, 2) if s else ""
        row["frames"] = "" if r.frames is None else r.frames
        row["mean reprojection px"] = " ".join(f"{c}={e:.2f}" for c, e in r.reprojection_px.items())
        row["people"] = r.people
        row["error"] = r.error
        out.append(row)
    return out


def write_summary(records: Sequence[SessionRecord], steps: Sequence[str], csv_path: Path,
                  meta: dict | None = None) -> tuple[Path, Path]:
    """Write ``csv_path`` and the same name with ``.json`` (full records and ``meta``); returns both paths."""
    table = rows(records, steps)
    buf = io.StringIO()
    if table:
        writer = csv.DictWriter(buf, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    csv_path = Path(csv_path)
    json_path = csv_path.with_suffix(".json")
    write_text(csv_path, buf.getvalue())
    write_text(json_path, json.dumps({**(meta or {}), "steps": list(steps), "sessions": [asdict(r) for r in records]},
                                     indent=2))
    return csv_path, json_path


def exit_code(records: Sequence[SessionRecord]) -> int:
    """0 when every session succeeded, 2 when any failed."""
    return 2 if any(r.status != "ok" for r in records) else 0
