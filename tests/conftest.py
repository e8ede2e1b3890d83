"""Shared fixtures. Tests that need the shared data folder (../shared beside the checkout) skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


@pytest.fixture(scope="session")
def pose2sim_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "pose2sim_demo_single"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def pose2sim_multi_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "pose2sim_demo_multi"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def tiny_body_path(tmp_path_factory) -> Path:
    """A small SMPL-format body file (see tests/tiny_body.py); its BodyModel name is ``tiny_body``."""
    from tests.tiny_body import write_tiny_body

    return write_tiny_body(tmp_path_factory.mktemp("body") / "tiny_body.npz")


@pytest.fixture(scope="session")
def any_body_spec() -> str:
    """The bundled body, which every checkout has."""
    return "open"
