"""Calibration TOML, keypoints HDF5, atomic writes, and the import layering of the package."""

import ast
from pathlib import Path

import numpy as np
import pytest

from mocap.cameras import CameraRig
from mocap.errors import CalibrationError, InputDataError
from mocap.io.atomic import atomic_path
from mocap.io.calibration_toml import load_rig, save_rig
from mocap.io.keypoints_h5 import Keypoints2D, read_keypoints, write_keypoints
from tests.test_cameras import random_camera


@pytest.fixture
def rig():
    rng = np.random.default_rng(0)
    return CameraRig(tuple(random_camera(rng, f"cam{i}") for i in range(3)))


def test_toml_round_trip_and_aniposelib_agrees(tmp_path, rig):
    path = save_rig(rig, tmp_path / "calibration.toml", {"source": "test"})
    back = load_rig(path)
    assert back.names == rig.names
    for a, b in zip(rig, back):
        np.testing.assert_allclose(b.K, a.K)
        np.testing.assert_allclose(b.R, a.R, atol=1e-12)
        np.testing.assert_allclose(b.t, a.t)
        assert b.image_size == a.image_size
    # an independent reader of the same file projects the same pixels
    from aniposelib.cameras import CameraGroup

    group = CameraGroup.load(str(path))
    X = np.random.default_rng(1).normal(size=(20, 3)) * 0.5
    ours = rig.project(X)
    theirs = group.project(X)
    np.testing.assert_allclose(theirs, ours, atol=1e-6)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[cam_0\n", "not valid TOML"),
        ("[metadata]\nx = 1\n", "no camera tables"),
        ('[cam_0]\nname = "a"\n', "lacks distortions, matrix"),
        ('[cam_0]\nname="a"\nsize=[1,1]\nmatrix=[[1,0,0],[0,1,0]]\ndistortions=[0]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n', "K has shape"),
    ],
)
def test_toml_errors_name_file_and_table(tmp_path, text, message):
    path = tmp_path / "calibration.toml"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message) as e:
        load_rig(path)
    assert str(path) in str(e.value)


def test_missing_toml(tmp_path):
    with pytest.raises(InputDataError, match="calibration file not found"):
        load_rig(tmp_path / "nope.toml")


def make_keypoints(F=6, V=2, K=4) -> Keypoints2D:
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, size=(F, V, K, 3)).astype(np.float32)
    detected = np.ones((F, V), bool)
    detected[2, 1] = False
    kp[2, 1] = np.nan
    boxes = rng.uniform(0, 100, size=(F, V, 4))
    boxes[2, 1] = np.nan
    return Keypoints2D(("a", "b"), kp, boxes, detected, [[100, 80], [120, 90]], "test4", tuple("wxyz"), 30.0,
                       {"detector": "unit-test"}, ({"video": "a.mp4"}, {"video": "b.mp4"}))


def test_keypoints_round_trip(tmp_path):
    kp = make_keypoints()
    write_keypoints(tmp_path / "k.h5", kp)
    back = read_keypoints(tmp_path / "k.h5")
    np.testing.assert_array_equal(back.keypoints, kp.keypoints)
    np.testing.assert_array_equal(back.boxes, kp.boxes)
    np.testing.assert_array_equal(back.detected, kp.detected)
    assert back.cameras == ("a", "b") and back.names == kp.names and back.fps == 30.0
    assert back.meta == {"detector": "unit-test"} and back.view_meta[1] == {"video": "b.mp4"}
    only_b = read_keypoints(tmp_path / "k.h5", ["b"])
    np.testing.assert_array_equal(only_b.keypoints[:, 0], kp.keypoints[:, 1])
    with pytest.raises(InputDataError, match="no keypoints for camera"):
        read_keypoints(tmp_path / "k.h5", ["c"])


def test_keypoints_shape_checked():
    with pytest.raises(InputDataError, match=r"expected \(F, 2, 4, 3\)"):
        Keypoints2D(("a", "b"), np.zeros((3, 2, 5, 3)), np.zeros((3, 2, 4)), np.zeros((3, 2)), np.zeros((2, 2)), "f", tuple("wxyz"), 1.0)


def test_not_a_keypoints_file(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"garbage")
    with pytest.raises(InputDataError, match="unreadable HDF5"):
        read_keypoints(tmp_path / "x.h5")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


CORE = ("cameras", "rotations", "errors", "body", "config")
STAGES = ("calib", "detect", "fitting", "eval", "io", "viz", "synth", "cli", "session")
FORBIDDEN_IN_CORE = ("typer", "rich", "mediapipe", "bpy") + tuple(f"mocap.{s}" for s in STAGES)
ALLOWED_IN_CORE = {"mocap.io.atomic"}  # a file-system utility, not a stage


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_stage_and_no_terminal_ui():
    pkg = Path(__file__).resolve().parents[1] / "mocap"
    files = [p for c in CORE for p in ([pkg / f"{c}.py"] if (pkg / f"{c}.py").exists() else (pkg / c).rglob("*.py"))]
    assert files
    for f in files:
        bad = {m for m in _imports(f) - ALLOWED_IN_CORE if any(m == x or m.startswith(x + ".") for x in FORBIDDEN_IN_CORE)}
        assert not bad, f"{f.relative_to(pkg.parent)} imports {sorted(bad)}"
