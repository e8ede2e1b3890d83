"""Tiny synthetic sessions for the batch tests: keypoints only, so every step but detection runs in seconds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np


def make_takes(root: Path, count: int, frames: int = 8) -> list[Path]:
    """``count`` keypoint-only synthetic sessions ``root/take<i>`` (4 cameras, different seeds)."""
    from mocap.synth.session import SynthConfig, synthesize

    return [synthesize(root / f"take{i}", SynthConfig(cameras=4, frames=frames, seed=i)).root for i in range(count)]


def break_session(src: Path, dest: Path) -> Path:
    """A copy of ``src`` without its calibration: `mocap run` fails on it with one line naming the file."""
    shutil.copytree(src, dest)
    (dest / "calibration.toml").unlink()
    return dest


def fit_arrays(session: Path) -> dict[str, np.ndarray]:
    """Every array of the session's ``smpl.npz`` (the metadata JSON included)."""
    with np.load(session / "output" / "smpl.npz") as f:
        return {k: f[k] for k in f.files}


def cpu_seconds(pid: int) -> float:
    """CPU seconds process ``pid`` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
