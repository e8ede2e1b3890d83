"""The Ray runner: each session (or each step of it) is a Ray task with declared resources.

No address starts a local Ray on this machine; an address (``HOST:PORT`` of a ``ray start --head``) joins
that cluster. Tasks read and write the session folders by path, so every node must see them at the same
path (NFS or the like, see docs/scaling.md); only the small per-session records travel through Ray's object
store. A task whose worker dies is retried by Ray (``max_retries``); a second death is recorded as the
session's failure. Outputs are written atomically, so a retried session starts from whole files.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from mocap.batch.pool import OnEvent
from mocap.batch.worker import SessionRecord, StepRecord, finish, process_session, run_step, single_threaded
from mocap.errors import MissingDependencyError

#: Object store of a Ray this command starts: the records are a few kilobytes, Ray's default takes 30 % of RAM.
LOCAL_OBJECT_STORE_BYTES = 100 * 1024 ** 2

#: Imported by each worker of a Ray this command starts as the worker starts (Ray's ``preload_python_modules``),
#: while the driver is still connecting: torch, the fit and MediaPipe are in place when the first task lands
#: instead of being imported by it (benchmarks/batch.py).
LOCAL_PRELOAD = ["mocap.batch.preload"]

#: What starts the daemons of a local Ray that a batch has no use for: the autoscaler monitor (a local Ray has a
#: fixed size), the log monitor (it streams the workers' logs to the driver, and ``log_to_driver`` is off) and
#: the dashboard's API server (jobs and state queries from outside; nothing outside knows this Ray). Each is a
#: Python process importing Ray, 0.6-0.9 s of CPU while the workers start (``ray.init`` waits for the API
#: server), and Ray 2.60 stops the GCS before the monitor, whose signal handler then waits on the dead GCS
#: until Ray kills it a second later: every batch paid that second.
UNUSED_DAEMONS = ("start_monitor", "start_log_monitor", "start_api_server")


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--ray needs Ray: pip install 'mocap[cluster]'") from None
    return ray


def connect(address: str | None, num_cpus: int | None = None):
    """Join the cluster at ``address``, or start a local Ray (``num_cpus`` CPUs, default all) when None."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    # Workers import mocap as their node has it installed (a local Ray's workers inherit this environment).
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    else:
        with _skipped(UNUSED_DAEMONS):
            ray.init(num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False,
                     logging_level="WARNING", log_to_driver=False,
                     _system_config={"preload_python_modules": LOCAL_PRELOAD})
    return ray


@contextmanager
def _skipped(methods: tuple[str, ...]):
    """Ray's node ``methods`` do nothing while a local Ray starts: ``ray.init`` has no option for these daemons
    (``ray start --no-monitor`` has one). Ray's internals: where they differ, Ray starts its daemons as usual."""
    try:
        from ray._private.node import Node

        saved = {name: getattr(Node, name) for name in methods}
    except (ImportError, AttributeError):
        saved = {}
    for name in saved:
        setattr(Node, name, lambda self, *args, **kwargs: None)
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(Node, name, method)


def _resources(ray) -> dict:
    """One CPU per task; when the cluster has GPUs, each task takes an equal share of them."""
    total = ray.cluster_resources()
    gpus, cpus = total.get("GPU", 0.0), max(total.get("CPU", 1.0), 1.0)
    return {"num_cpus": 1, **({"num_gpus": min(1.0, gpus / cpus)} if gpus else {})}


def _session_task(root: str, steps: tuple[str, ...], force: bool, label: str) -> SessionRecord:
    single_threaded()
    return process_session(root, steps, force, label)


def _step_task(root: str, step: str, steps: tuple[str, ...], force: bool, label: str,
               before: SessionRecord | None) -> SessionRecord:
    """One step, after the session's earlier steps (``before``, passed as a Ray object: the dependency)."""
    import os
    import socket

    single_threaded()
    record = before or SessionRecord(label, host=socket.gethostname(), pid=os.getpid())
    if any(s.status == "failed" for s in record.steps):
        record.steps.append(StepRecord(step, "not run"))
    else:
        record.steps.append(run_step(Path(root), step, steps, force))
    return finish(record, Path(root)) if step == steps[-1] else record


def run_ray(sessions: Sequence[Path], steps: tuple[str, ...], force: bool = False, address: str | None = None,
            num_cpus: int | None = None, per: str = "session", on_event: OnEvent | None = None,
            retries: int = 1, labels: Sequence[str] | None = None) -> list[SessionRecord]:
    """Process ``sessions`` as Ray tasks, ``per`` ``"session"`` (one task runs all its steps) or ``"step"``
    (one task per step, chained); records in input order. A Ray this call starts (or joins) is shut down (left)
    when it returns; one already connected stays."""
    ours = not _ray().is_initialized()
    ray = connect(address, num_cpus)
    try:
        return _run(ray, sessions, steps, force, per, on_event, retries, labels)
    finally:
        if ours:
            shutdown()


def _run(ray, sessions, steps, force, per, on_event, retries, labels) -> list[SessionRecord]:
    emit = on_event or (lambda kind, index, payload: None)
    labels = list(labels) if labels is not None else [str(s) for s in sessions]
    opts = {**_resources(ray), "max_retries": retries, "retry_exceptions": False}
    roots = [str(Path(s).resolve()) for s in sessions]
    if per == "session":
        task = ray.remote(_session_task).options(name="mocap batch session", **opts)
        refs = {task.remote(r, steps, force, labels[i]): i for i, r in enumerate(roots)}
    else:
        task = ray.remote(_step_task)
        refs = {}
        for i, r in enumerate(roots):
            ref = None
            for step in steps:
                ref = task.options(name=f"mocap batch {step}", **opts).remote(r, step, steps, force, labels[i], ref)
            refs[ref] = i
    for i in range(len(roots)):
        emit("start", i, None)
    records: list[SessionRecord | None] = [None] * len(roots)
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        i = refs[ready[0]]
        records[i] = _get(ray, ready[0], labels[i], retries)
        emit("done", i, records[i])
    return records  # type: ignore[return-value]


def _get(ray, ref, label: str, retries: int) -> SessionRecord:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:  # the worker or its node died on every attempt
        why = f"the Ray task died on each of {retries + 1} attempts ({type(e).__name__})"
        return SessionRecord(label, "failed", [StepRecord("worker", "failed", detail=why)], error=why,
                             attempts=retries + 1)


def shutdown() -> None:
    """Stop the local Ray this process started, or leave the cluster it joined."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()
