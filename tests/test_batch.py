"""`mocap batch` on the local process pool: discovery, failure isolation, resuming, a killed worker."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mocap.batch.runner import run_batch
from mocap.batch.sessions import discover, parse_steps
from mocap.cli import app
from mocap.errors import ConfigError, InputDataError
from tests.batch_data import break_session, cpu_seconds, fit_arrays, make_takes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def takes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("takes")
    make_takes(root, 3)
    return root


def test_steps_are_ordered_and_checked():
    assert parse_steps("report,run,export:bvh,detect") == ("detect", "run", "export:bvh", "report")
    for bad in ("fit", "export", "run:bvh", "export:xyz", ""):
        with pytest.raises(ConfigError):
            parse_steps(bad)


def test_discovery(takes: Path, tmp_path: Path):
    assert [p.name for p in discover([str(takes)])] == ["take0", "take1", "take2"]
    # A session named directly, through a glob and through its parent counts once.
    assert len(discover([str(takes / "take1"), str(takes / "take*"), str(takes)])) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="no session here"):
        discover([str(tmp_path / "empty")])
    with pytest.raises(InputDataError, match="matches no folder"):
        discover([str(tmp_path / "nothing*")])


def test_broken_session_is_isolated_and_a_rerun_skips(takes: Path, tmp_path: Path):
    root = tmp_path / "batch"
    root.mkdir()
    for p in sorted(takes.iterdir())[:2]:
        import shutil

        shutil.copytree(p, root / p.name)
    break_session(takes / "take2", root / "take9_broken")
    summary = tmp_path / "summary.csv"
    res = CliRunner().invoke(app, ["batch", str(root), "--steps", "detect,run", "--workers", "2", "--summary", str(summary)])
    assert res.exit_code == 2, res.output
    data = json.loads(summary.with_suffix(".json").read_text())
    status = {Path(s["session"]).name: s for s in data["sessions"]}
    assert status["take0"]["status"] == status["take1"]["status"] == "ok"
    broken = status["take9_broken"]
    assert broken["status"] == "failed" and "calibration.toml" in broken["error"] and broken["error"].startswith("run:")
    assert (root / "take0" / "output" / "smpl.npz").is_file() and not (root / "take9_broken" / "output" / "smpl.npz").exists()
    assert "take9_broken" in summary.read_text()
    assert status["take0"]["frames"] == 8 and len(status["take0"]["reprojection_px"]) == 4
    assert len({s["pid"] for s in status.values()}) == 2  # two worker processes shared the three sessions
    first = fit_arrays(root / "take0")
    mtime = (root / "take0" / "output" / "smpl.npz").stat().st_mtime_ns

    # Again, without the broken one: the fits are up to date, so nothing is refitted.
    again = run_batch([str(root / "take0"), str(root / "take1")], "detect,run", workers=2, summary=tmp_path / "s2.csv")
    assert again.exit_code == 0
    assert [s.status for r in again.records for s in r.steps] == ["skipped"] * 4
    assert (root / "take0" / "output" / "smpl.npz").stat().st_mtime_ns == mtime

    # A changed setting makes the fit stale; --force redoes an up-to-date one; both give the same arrays.
    (root / "take0" / "session.yaml").write_text((root / "take0" / "session.yaml").read_text()
                                                 + "\noverrides:\n  fit:\n    iterations: 2\n")
    (root / "take1" / "output" / "keypoints2d.h5").touch()
    redo = run_batch([str(root / "take0"), str(root / "take1")], "run", workers=1, summary=tmp_path / "s3.csv")
    assert [r.steps[0].status for r in redo.records] == ["ran", "ran"]
    forced = run_batch([str(root / "take1")], "run", workers=1, force=True, summary=tmp_path / "s4.csv")
    assert forced.records[0].steps[0].status == "ran"
    assert not np.array_equal(fit_arrays(root / "take0")["poses"], first["poses"])  # 2 iterations fit differently


def test_a_killed_worker_is_retried(takes: Path, tmp_path: Path):
    import shutil

    session = shutil.copytree(takes / "take0", tmp_path / "take0")
    killed = []

    def on_event(kind, index, payload):
        if kind == "start" and not killed:
            # Kill once it has worked 0.3 s of CPU (the fit takes over 1 s): mid-session, however busy the
            # machine; a worker forked from the fork server starts at once, so a wall-clock wait could miss it.
            start, deadline = cpu_seconds(payload), time.time() + 30
            while cpu_seconds(payload) - start < 0.3 and time.time() < deadline:
                time.sleep(0.02)
            os.kill(payload, signal.SIGKILL)
            killed.append(payload)

    res = run_batch([str(session)], "run,export:bvh", workers=1, on_event=on_event, summary=tmp_path / "s.csv")
    rec = res.records[0]
    assert killed and rec.status == "ok" and rec.attempts == 2
    assert (session / "output" / "smpl.bvh").is_file()
    assert not [p for p in (session / "output").iterdir() if ".tmp" in p.name]


def _worker_state(conn) -> None:
    """What a pool worker starts with, before it runs anything: imported modules and running threads."""
    import sys

    already = {m: m in sys.modules for m in ("torch", "mediapipe", "mocap.fitting.run")}
    threads = len(os.listdir("/proc/self/task"))
    from mocap.batch.worker import single_threaded

    single_threaded()
    import cv2
    import torch

    conn.send((already, threads, os.environ.get("OPENBLAS_NUM_THREADS"), torch.get_num_threads(),
               torch.get_num_interop_threads(), cv2.getNumThreads()))


def test_pool_workers_start_imported_and_single_threaded():
    from mocap.batch.pool import _context

    ctx = _context()
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_worker_state, args=(theirs,))
    proc.start()
    already, threads, blas, torch_threads, interop, cv2_threads = ours.recv()
    proc.join()
    # Forked from the fork server, which imported these once, single-threaded (no BLAS or OpenMP pool running).
    assert already == {"torch": True, "mediapipe": True, "mocap.fitting.run": True}
    assert threads == 1 and blas == "1"
    assert (torch_threads, interop, cv2_threads) == (1, 1, 1)


def test_calibrate_imports_shape_is_held_and_export(takes: Path, tmp_path: Path):
    import shutil

    from mocap.io.calibration_toml import load_rig
    from mocap.io.smpl_npz import load_sequence

    session = shutil.copytree(takes / "take1", tmp_path / "take1")
    (session / "calibration").mkdir()
    (session / "calibration.toml").rename(session / "calibration" / "lab.toml")  # another tool's (anipose) file
    steps = "calibrate,shape,run,export:bvh"
    res = run_batch([str(session)], steps, workers=1, summary=tmp_path / "s.csv")
    rec = res.records[0]
    assert rec.status == "ok", rec.error
    assert [s.status for s in rec.steps] == ["ran"] * 4
    rig, source = load_rig(session / "calibration.toml"), load_rig(session / "calibration" / "lab.toml")
    for a, b in zip(rig, source):
        np.testing.assert_allclose(a.K, b.K, rtol=1e-9)
        np.testing.assert_allclose(a.R, b.R, atol=1e-9)
        np.testing.assert_allclose(a.t, b.t, atol=1e-9)
    meta = load_sequence(session / "output" / "smpl.npz").meta
    assert meta["shape_file"] == str(session.resolve() / "output" / "subject.npz")
    np.testing.assert_allclose(load_sequence(session / "output" / "smpl.npz").betas,
                               np.load(session / "output" / "subject.npz")["betas"], atol=1e-6)
    assert (session / "output" / "smpl.bvh").is_file()
    again = run_batch([str(session)], steps, workers=1, summary=tmp_path / "s2.csv")
    assert [s.status for s in again.records[0].steps] == ["skipped"] * 4
