"""The local Ray `mocap batch --ray` starts itself: its workers start with the fit imported, and nothing of it
is left once the batch returns. Each test starts (and stops) its own Ray, so no other Ray runs in this module."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from mocap.batch import cluster
from mocap.batch.runner import run_batch
from tests.batch_data import make_takes

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


@pytest.fixture
def marked(monkeypatch) -> bytes:
    """An environment marker that every process of a Ray started now inherits (its daemons and workers)."""
    assert not ray.is_initialized()
    tag = uuid.uuid4().hex
    monkeypatch.setenv("MOCAP_TEST_RAY", tag)
    return f"MOCAP_TEST_RAY={tag}".encode()


def _alive(marker: bytes, wait_s: float = 20.0) -> list[int]:
    """Processes other than this one carrying ``marker`` after up to ``wait_s`` for them to go (zombies aside)."""
    deadline = time.time() + wait_s
    while True:
        pids = []
        for p in Path("/proc").glob("[0-9]*"):
            try:
                if int(p.name) != os.getpid() and (p / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z" \
                        and marker in (p / "environ").read_bytes().split(b"\0"):
                    pids.append(int(p.name))
            except (OSError, IndexError, ValueError):
                continue
        if not pids or time.time() > deadline:
            return pids
        time.sleep(0.2)


def test_local_ray_workers_start_with_the_fit_imported(marked: bytes):
    def imported(names: tuple[str, ...]) -> dict[str, bool]:  # nested: Ray ships it by value, imports nothing
        import sys

        return {m: m in sys.modules for m in names}

    names = ("torch", "mediapipe", "mocap.fitting.run", "mocap.detect.stage")
    r = cluster.connect(None, num_cpus=1)
    try:
        assert r.get(r.remote(imported).remote(names)) == dict.fromkeys(names, True)
        assert _alive(marked, wait_s=0)  # the daemons and the worker carry the marker
    finally:
        cluster.shutdown()
    assert not ray.is_initialized()
    assert _alive(marked) == []


def test_a_batch_stops_the_ray_it_started(marked: bytes, tmp_path: Path):
    (take,) = make_takes(tmp_path, 1)
    res = run_batch([str(take)], "run", workers=1, ray=True, summary=tmp_path / "s.csv")
    assert res.exit_code == 0 and res.records[0].steps[0].status == "ran"
    assert not ray.is_initialized()
    assert _alive(marked) == []
