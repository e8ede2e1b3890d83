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
def any_body_spec() -> str:
    """A loadable SMPL-format body: the bundled one, else the fake SMPL of ../shared, else skip."""
    from mocap.body.model import OPEN_BODY_FILE

    if OPEN_BODY_FILE.is_file():
        return "open"
    fake = SHARED / "refit_reference" / "fake_smpl.npz"
    if fake.is_file():
        return str(fake)
    pytest.skip("no body model: neither the bundled asset nor ../shared/refit_reference/fake_smpl.npz")
