"""`mocap batch --ray` on a real local Ray (two CPUs, a small object store), started once for the module."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mocap.batch.runner import run_batch
from mocap.cli import app
from tests.batch_data import break_session, cpu_seconds, fit_arrays, make_takes

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def local_ray():
    from mocap.batch.cluster import connect

    connect(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def takes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("takes")
    make_takes(root, 2)
    return root


def _copy(takes: Path, dest: Path) -> Path:
    for p in sorted(takes.iterdir()):
        shutil.copytree(p, dest / p.name)
    return dest


def test_broken_session_rerun_and_tasks_per_step(local_ray, takes: Path, tmp_path: Path):
    root = _copy(takes, tmp_path / "batch")
    break_session(takes / "take1", root / "take9_broken")
    summary = tmp_path / "summary.csv"
    res = CliRunner().invoke(app, ["batch", str(root), "--steps", "detect,run", "--ray", "--summary", str(summary)])
    assert res.exit_code == 2, res.output
    data = json.loads(summary.with_suffix(".json").read_text())
    assert data["runner"].startswith("ray local")
    by_name = {Path(s["session"]).name: s for s in data["sessions"]}
    assert by_name["take0"]["status"] == by_name["take1"]["status"] == "ok"
    assert by_name["take9_broken"]["status"] == "failed" and "calibration.toml" in by_name["take9_broken"]["error"]
    fitted = {n: fit_arrays(root / n) for n in ("take0", "take1")}

    # A re-run skips the finished steps; one task per step (chained) gives the same records.
    again = run_batch([str(root / "take0"), str(root / "take1")], "detect,run", ray=True, ray_per="step",
                      summary=tmp_path / "again.csv")
    assert again.exit_code == 0
    assert [s.status for r in again.records for s in r.steps] == ["skipped"] * 4
    # --force refits: the fit is deterministic, so the arrays come out equal to the first run's.
    forced = run_batch([str(root / "take0")], "run", ray=True, ray_per="step", force=True, summary=tmp_path / "f.csv")
    assert forced.records[0].steps[0].status == "ran"
    for k, v in fit_arrays(root / "take0").items():
        assert np.array_equal(v, fitted["take0"][k], equal_nan=v.dtype.kind in "fc"), k


def _kill_first_task(name: bytes, killed: list[int], stop: threading.Event) -> None:
    """Kill the first Ray worker process whose title is ``ray::<name>`` (Ray titles a busy worker so) once it
    has worked 0.3 s of CPU on it (the fit takes over 1 s): mid-session however busy the machine, and a worker of
    a local Ray has the fit imported before the task starts, so a wall-clock wait could miss it."""
    while not stop.is_set() and not killed:
        for p in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if p.read_bytes().startswith(b"ray::" + name):
                    pid = int(p.parent.name)
                    start, deadline = cpu_seconds(pid), time.time() + 30
                    while cpu_seconds(pid) - start < 0.3 and time.time() < deadline:
                        time.sleep(0.02)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            except (OSError, ValueError):
                continue
        time.sleep(0.05)


def test_a_killed_ray_worker_is_retried(local_ray, takes: Path, tmp_path: Path):
    session = shutil.copytree(takes / "take0", tmp_path / "take0")
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_task, args=(b"mocap batch session", killed, stop), daemon=True)
    killer.start()
    try:
        res = run_batch([str(session)], "run,export:bvh", ray=True, summary=tmp_path / "s.csv")
    finally:
        stop.set()
        killer.join()
    rec = res.records[0]
    assert killed, "the task finished before it could be killed"
    # Retried by Ray (max_retries=1) on another worker: whole outputs, no temporary file left behind.
    assert rec.status == "ok", rec.error
    assert rec.pid != killed[0]
    assert (session / "output" / "smpl.bvh").is_file()
    assert not [p for p in (session / "output").iterdir() if ".tmp" in p.name]
