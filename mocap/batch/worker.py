"""What a batch worker runs: one session's steps in order, each timed, a failure recorded with its one line.

The same functions serve the local pool (one session per job) and Ray (one task per session, or per step).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from mocap.batch.steps import step_function
from mocap.errors import MocapError


@dataclass
class StepRecord:
    step: str
    status: str  # ran, skipped, failed, not run
    wall_s: float = 0.0
    cpu_s: float = 0.0
    detail: str = ""


@dataclass
class SessionRecord:
    session: str
    status: str = "ok"  # ok or failed
    steps: list[StepRecord] = field(default_factory=list)
    frames: int | None = None
    reprojection_px: dict[str, float] = field(default_factory=dict)  # camera -> mean over frames
    people: int = 0
    error: str = ""
    attempts: int = 1
    host: str = ""
    pid: int = 0  # of the worker process that ran it


#: Read by OpenMP, MKL and OpenBLAS when they load, not later: a pool worker imports this module (and nothing
#: that loads numpy) before ``single_threaded`` sets them; a Ray worker gets OMP_NUM_THREADS=1 from Ray.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def single_threaded() -> None:
    """One CPU thread for torch, numpy's BLAS and OpenCV: a batch runs one session per core already, and a
    worker's spare threads would only take turns on the other workers' cores.

    MediaPipe's graph keeps its own threads (decoding runs beside it too): they pipeline one view's frames
    and cost no extra CPU time (benchmarks/batch.py compares the CPU seconds of one and two workers)."""
    os.environ.update(THREAD_ENV)
    import cv2
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already fixed: this process ran torch work before (a reused Ray worker)
        pass
    cv2.setNumThreads(1)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def error_line(e: BaseException) -> str:
    """A user mistake's own message; anything else (a bug) with its type, so it can be looked up."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text if isinstance(e, MocapError) else f"{type(e).__name__}: {text}"


def clear_stale_temporaries(root: Path) -> None:
    """Remove the temporary files of a killed earlier run (`mocap.io.atomic` names them ``.<stem>.*.tmp*``):
    a session is processed by one worker at a time, so none of them is being written now."""
    out = root / "output"
    if out.is_dir():
        for p in out.rglob(".*.tmp*"):
            if p.is_file():
                p.unlink(missing_ok=True)


def run_step(root: Path, step: str, steps: tuple[str, ...], force: bool) -> StepRecord:
    """One step of a session; a failure becomes a ``failed`` record with its error line."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    try:
        out = step_function(step, steps)(root, force)
        status, detail = out.status, out.detail
    except Exception as e:  # noqa: BLE001 - one session's failure, whatever it is, must not stop the batch
        status, detail = "failed", error_line(e)
    return StepRecord(step, status, time.perf_counter() - start, _cpu_seconds() - cpu, detail)


def session_metrics(root: Path, record: SessionRecord) -> None:
    """Frames, mean reprojection error per view (the main subject's) and people fitted, from ``smpl.npz``."""
    import numpy as np

    from mocap.io.smpl_npz import load_sequence

    smpl = root / "output" / "smpl.npz"
    if not smpl.is_file():
        return
    seq = load_sequence(smpl)
    record.people = len(seq.meta.get("people") or [0])  # `mocap run` lists every person it fitted there
    record.frames = seq.num_frames
    err, cams = seq.extra.get("reprojection_error_px"), seq.extra.get("camera_names")
    if err is not None and cams is not None:
        with np.errstate(all="ignore"):
            means = np.nanmean(np.where(np.isfinite(err), err, np.nan), axis=0) if np.isfinite(err).any() else []
        record.reprojection_px = {str(c): round(float(m), 3) for c, m in zip(cams.tolist(), means) if np.isfinite(m)}


def finish(record: SessionRecord, root: Path) -> SessionRecord:
    """Mark the steps after a failure as not run, and read the session's figures."""
    failed = next((s for s in record.steps if s.status == "failed"), None)
    if failed is not None:
        record.status, record.error = "failed", f"{failed.step}: {failed.detail}"
    try:
        session_metrics(root, record)
    except Exception as e:  # noqa: BLE001 - a figure that cannot be read is said, the record still returns
        record.error = record.error or f"summary figures: {error_line(e)}"
    return record


def process_session(root: str | os.PathLike, steps: tuple[str, ...], force: bool, label: str | None = None) -> SessionRecord:
    """Run ``steps`` on the session at ``root`` in order, stopping at the first failure."""
    import socket

    root = Path(root)
    record = SessionRecord(label or str(root), host=socket.gethostname(), pid=os.getpid())
    try:
        clear_stale_temporaries(root)
    except OSError as e:
        record.steps.append(StepRecord("start", "failed", detail=f"{root}: {e.strerror or e}"))
        return finish(record, root)
    for i, step in enumerate(steps):
        rec = run_step(root, step, steps, force)
        record.steps.append(rec)
        if rec.status == "failed":
            record.steps += [StepRecord(s, "not run") for s in steps[i + 1:]]
            break
    return finish(record, root)
