"""Calibration files: round trips through every format, Qualisys conventions, the import/export CLI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from mocap.calib.convert import export_rig, import_rig
from mocap.calib.qualisys import read_qca
from mocap.cameras import Camera, CameraRig
from mocap.cli import app
from mocap.errors import CalibrationError
from mocap.io.calibration_toml import load_rig, save_rig


def _rig() -> CameraRig:
    rng = np.random.default_rng(0)
    cams = []
    for i in range(3):
        from scipy.spatial.transform import Rotation

        R = Rotation.from_rotvec(rng.normal(0, 1, 3)).as_matrix()
        K = np.array([[1500.0 + i, 0, 960.5], [0, 1502.0, 540.25], [0, 0, 1]])
        cams.append(Camera(f"cam{i + 1}", K, [-0.1, 0.05, 0.001, -0.002, 0.0], R, rng.normal(0, 2, 3), (1920, 1080)))
    return CameraRig(tuple(cams))


@pytest.mark.parametrize("fmt,name", [("anipose", "c.toml"), ("easymocap", "em"), ("opencv", "c.yml"), ("opencv", "c.json")])
@pytest.mark.parametrize("up", ["y", "z"])
def test_round_trip_projects_identically(tmp_path, fmt, name, up):
    rig = _rig()
    export_rig(rig, tmp_path / name, fmt, up=up)
    back = import_rig(tmp_path / name, fmt, up=up)
    assert back.names == rig.names
    for a, b in zip(back, rig):
        assert np.allclose(a.K, b.K) and np.allclose(a.dist, b.dist)
        assert np.allclose(a.R, b.R, atol=1e-12) and np.allclose(a.t, b.t, atol=1e-12)
    assert [c.image_size for c in back] == [c.image_size for c in rig]


def test_easymocap_world_is_z_up(tmp_path):
    rig = _rig()
    export_rig(rig, tmp_path, "easymocap")
    as_is = import_rig(tmp_path, "easymocap", up="y")  # the file's own frame
    # our y (up) is EasyMocap's z: heights agree
    assert np.allclose(as_is.centers[:, 2], rig.centers[:, 1])


def test_millimetre_import(tmp_path):
    rig = _rig()
    mm = CameraRig(tuple(Camera(c.name, c.K, c.dist, c.R, c.t * 1000, c.image_size) for c in rig))
    save_rig(mm, tmp_path / "mm.toml")
    back = import_rig(tmp_path / "mm.toml", "anipose", units="mm")
    assert np.allclose(back.centers, rig.centers)


def _qca(camera: Camera, left: int = 0, top: int = 0) -> str:
    """A .qca.txt written from the documented conventions, independently of the reader's matrices."""
    # lab frame is z up: ours (x, y, z) = lab (x, z, -y); Qualisys camera axes = OpenCV's with y, z negated
    lab_from_ours = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)
    centre_lab = lab_from_ours @ camera.center * 1000
    axes_lab = (np.diag([1, -1, -1]) @ camera.R) @ lab_from_ours.T  # rows: Qualisys camera axes in the lab
    w, h = camera.image_size
    r = {f"r{i + 1}{j + 1}": repr(float(axes_lab[i, j])) for i in range(3) for j in range(3)}
    K, d = camera.K, camera.dist
    cam = ET.Element("camera", active="1", serial=camera.name)
    ET.SubElement(cam, "fov_video", left=str(left), top=str(top), right=str(left + w - 1), bottom=str(top + h - 1))
    ET.SubElement(cam, "transform", x=repr(centre_lab[0]), y=repr(centre_lab[1]), z=repr(centre_lab[2]), **r)
    ET.SubElement(cam, "intrinsic", focalLengthU=repr(K[0, 0] * 64), focalLengthV=repr(K[1, 1] * 64),
                  centerPointU=repr((K[0, 2] + left) * 64), centerPointV=repr((K[1, 2] + top) * 64),
                  radialDistortion1=repr(d[0]), radialDistortion2=repr(d[1]), radialDistortion3=repr(d[4]),
                  tangentalDistortion1=repr(d[2]), tangentalDistortion2=repr(d[3]))
    root = ET.Element("calibration")
    ET.SubElement(root, "cameras").append(cam)
    return ET.tostring(root, encoding="unicode")


def test_qualisys_units_window_and_axes(tmp_path):
    cam = _rig()[0]
    (tmp_path / "c.qca.txt").write_text(_qca(cam, left=16, top=8))
    (back,) = read_qca(tmp_path / "c.qca.txt")
    assert back.image_size == cam.image_size
    X = np.random.default_rng(2).normal(0, 1, (20, 3)) + cam.center + 4 * cam.R[2]
    assert np.abs(back.project(X) - cam.project(X)).max() < 1e-6


def test_qualisys_errors(tmp_path):
    (tmp_path / "bad.qca.txt").write_text("<calibration><cameras></cameras></calibration>")
    with pytest.raises(CalibrationError, match="no <cameras><camera>"):
        read_qca(tmp_path / "bad.qca.txt")
    (tmp_path / "junk.qca.txt").write_text("not xml")
    with pytest.raises(CalibrationError, match="not a Qualisys"):
        read_qca(tmp_path / "junk.qca.txt")


def test_real_qualisys_file_reprojects_sensibly(pose2sim_dir):
    """Cameras 2-5 m from the treadmill (lab origin), 1.5-2.5 m high, all looking at it; the treadmill
    centre and a point 1 m above it land inside every image, the higher one higher in the image."""
    rig = read_qca(pose2sim_dir / "calibration" / "Calib.qca.txt")
    assert rig.names == ["cam01", "cam02", "cam03", "cam04"]
    C = rig.centers
    assert (np.linalg.norm(C[:, [0, 2]], axis=1) > 2).all() and (np.linalg.norm(C, axis=1) < 5).all()
    assert ((C[:, 1] > 1.5) & (C[:, 1] < 2.5)).all()
    for cam in rig:
        to_origin = -cam.center / np.linalg.norm(cam.center)
        assert np.degrees(np.arccos(cam.R[2] @ to_origin)) < 25
        ground, above = cam.project(np.array([[0.0, 0, 0], [0, 1.0, 0]]))
        w, h = cam.image_size
        assert 0 < ground[0] < w and 0 < ground[1] < h and 0 < above[1] < ground[1]
        assert cam.image_size == (1088, 1920)


def test_cli_import_export(pose2sim_dir, tmp_path):
    qca = pose2sim_dir / "calibration" / "Calib.qca.txt"
    runner = CliRunner()
    res = runner.invoke(app, ["calibrate", "import", str(qca), "--from", "qualisys", "-o", str(tmp_path / "calibration.toml")])
    assert res.exit_code == 0, res.output
    rig = load_rig(tmp_path / "calibration.toml")
    res = runner.invoke(app, ["calibrate", "export", str(tmp_path / "calibration.toml"), "--to", "easymocap"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "easymocap" / "intri.yml").is_file() and (tmp_path / "easymocap" / "extri.yml").is_file()
    back = import_rig(tmp_path / "easymocap", "easymocap")
    assert np.abs(back.project(np.zeros((1, 3))) - rig.project(np.zeros((1, 3)))).max() < 1e-6
    res = runner.invoke(app, ["calibrate", "import", str(qca), "--from", "nonsense", "-o", str(tmp_path / "x.toml")])
    assert res.exit_code == 2 and "unknown calibration format" in res.output
    res = runner.invoke(app, ["calibrate", "import", str(tmp_path / "missing.yml"), "--from", "opencv"])
    assert res.exit_code == 2 and "not found" in res.output


def test_compare_rigs_undoes_the_world_frame():
    from scipy.spatial.transform import Rotation

    from mocap.calib.compare import compare_rigs
    from mocap.calib.convert import change_world

    rig = _rig()
    Q = Rotation.from_rotvec([0.3, -1.2, 0.5]).as_matrix()
    moved = change_world(rig, Q, [1.0, -2.0, 0.5])
    e = compare_rigs(moved, rig)
    assert np.allclose(e.Q, Q.T) and e.centre_m.max() < 1e-9 and e.rotation_deg.max() < 1e-6
    assert e.focal.max() < 1e-12 and e.principal_px.max() < 1e-9
    # intrinsics errors are read per camera, whatever the frame; names are matched, not positions
    cams = list(moved)
    c = cams[1]
    K = c.K.copy()
    K[0, 0] *= 1.004
    K[:2, 2] += [1.5, -0.5]
    cams[1] = Camera(c.name, K, c.dist, c.R, c.t, c.image_size)
    e = compare_rigs(CameraRig(tuple(reversed(cams))), rig)
    assert e.cameras == tuple(rig.names)
    np.testing.assert_allclose(e.focal, [0, 0.004, 0], atol=1e-12)
    np.testing.assert_allclose(e.principal_px, [0, 1.5, 0], atol=1e-9)
    with pytest.raises(CalibrationError, match="lacks camera"):
        compare_rigs(rig.subset(["cam1", "cam2"]), rig)
