"""The Python API: lazy names, and the example of docs/api.md run as it stands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import mocap

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_public_name_resolves_and_unknown_ones_fail():
    for name in mocap.__all__:
        assert getattr(mocap, name) is not None, name
    assert mocap.Session.__module__ == "mocap.session" and mocap.run_session.__module__ == "mocap.fitting.run"
    assert set(mocap.__all__) <= set(dir(mocap))
    with pytest.raises(AttributeError, match="no attribute 'fit'"):
        mocap.fit  # noqa: B018


def test_import_and_help_load_no_heavy_library():
    code = ("import sys, mocap; from typer.testing import CliRunner; from mocap.cli import app; "
            "assert CliRunner().invoke(app, ['--help']).exit_code == 0; "
            "print(sorted(m for m in ('torch', 'cv2', 'mediapipe', 'scipy', 'h5py', 'smplx', 'roma', 'av', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]", out.stderr


def test_docs_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1  # the runnable example; ```py blocks need real footage
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    root = tmp_path / "api_demo"
    assert namespace["seq"].num_frames == 30 and (root / "output" / "smpl.npz").is_file()
    assert namespace["metrics"].mpjpe < 40  # measured 11.0 mm on this noisy 30-frame walk
    assert namespace["bvh"].is_file() and namespace["bvh"].read_text().startswith("HIERARCHY")
