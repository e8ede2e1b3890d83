"""The local runner: a pool of worker processes, one session at a time each.

Workers are forked by a fork server (``forkserver``, ``spawn`` where there is none), never from this process,
whose torch or OpenCV threads a forked child would inherit dead. The server imports torch, the fit and the
detector once (`mocap.batch.preload`), single-threaded, before it forks: each worker would otherwise pay
those imports itself, and on a busy machine that CPU time comes out of the batch's (benchmarks/batch.py).
Workers run single-threaded. A worker that dies mid-session (killed, out of memory) is replaced and its session is
tried once more on the new worker; a second death is recorded as that session's failure. Outputs are written
atomically, so a killed session leaves no half-written file under a final name.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable, Sequence

from mocap.batch.worker import SessionRecord, StepRecord, process_session, single_threaded

#: ``on_event(kind, index, payload)``: ``"start"`` with the worker's pid, ``"done"`` with the SessionRecord,
#: ``"retry"`` with the dead worker's exit code.
OnEvent = Callable[[str, int, object], None]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _context():
    """The fork server's context, its preload set (a server already running keeps what it imported)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mocap.batch.preload"])
    return ctx


def _worker_main(conn, steps: tuple[str, ...], force: bool) -> None:
    single_threaded()
    while (job := conn.recv()) is not None:
        index, root, label = job
        conn.send((index, process_session(root, steps, force, label)))
    conn.close()


class _Worker:
    def __init__(self, ctx, steps: tuple[str, ...], force: bool):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, steps, force), name="mocap batch worker", daemon=True)
        self.proc.start()
        child.close()
        self.job: tuple[int, str, str] | None = None

    def give(self, job: tuple[int, str, str]) -> None:
        self.job = job
        self.conn.send(job)


def run_pool(sessions: Sequence[Path], steps: tuple[str, ...], force: bool = False, workers: int | None = None,
             on_event: OnEvent | None = None, retries: int = 1, labels: Sequence[str] | None = None) -> list[SessionRecord]:
    """Process ``sessions`` on ``workers`` processes (default: one per usable core); records in input order."""
    ctx = _context()
    labels = list(labels) if labels is not None else [str(s) for s in sessions]
    todo = deque((i, str(Path(s).resolve()), labels[i]) for i, s in enumerate(sessions))
    attempts = [0] * len(sessions)
    records: list[SessionRecord | None] = [None] * len(sessions)
    emit = on_event or (lambda kind, index, payload: None)
    pool = [_Worker(ctx, steps, force) for _ in range(max(1, min(workers or usable_cores(), len(sessions))))]
    try:
        while todo or any(w.job for w in pool):
            for w in pool:
                if w.job is None and todo:
                    w.give(todo.popleft())
                    attempts[w.job[0]] += 1
                    emit("start", w.job[0], w.proc.pid)
            ready = wait([w.conn for w in pool if w.job] + [w.proc.sentinel for w in pool if w.job])
            for i, w in enumerate(pool):
                if w.job is None:
                    continue
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                message = _receive(w.conn)
                if message is not None:
                    index, record = message
                    record.attempts = attempts[index]
                    records[index], w.job = record, None
                    emit("done", index, record)
                elif w.conn in ready or not w.proc.is_alive():  # its end of the pipe closed: it died
                    pool[i] = _replace_dead(ctx, w, steps, force, todo, attempts, records, retries, emit)
    finally:
        for w in pool:
            _stop(w)
    return [r for r in records if r is not None]


def _receive(conn):
    """The worker's reply, or None when there is none (yet, or ever: a dead worker's pipe reads as closed)."""
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


def _replace_dead(ctx, w: _Worker, steps, force, todo, attempts, records, retries: int, emit: OnEvent) -> _Worker:
    """A worker died holding a job: try the session again (``retries`` times) or record the death."""
    index, root, label = w.job
    code = w.proc.exitcode
    w.proc.join()
    if attempts[index] <= retries:
        todo.appendleft((index, root, label))
        emit("retry", index, code)
    else:
        why = f"the worker process died (exit code {code}) on each of {attempts[index]} attempts"
        records[index] = SessionRecord(label, "failed", [StepRecord("worker", "failed", detail=why)],
                                       error=why, attempts=attempts[index])
        emit("done", index, records[index])
    return _Worker(ctx, steps, force)


def _stop(w: _Worker) -> None:
    if w.proc.is_alive():
        try:
            w.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        w.proc.join(timeout=10)
    if w.proc.is_alive():
        w.proc.terminate()
        w.proc.join()
    w.conn.close()
