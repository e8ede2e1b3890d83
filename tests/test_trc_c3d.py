"""TRC and C3D exports read back by independent readers: a TRC parser written here from OpenSim's description of
the format, and the ``c3d`` package (the files are written with ezc3d). Expected points come from the body layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mocap.body.model import JOINT_NAMES, OPEN_BODY_FILE, load_body
from mocap.cli import app
from mocap.io.smpl_npz import save_sequence
from mocap.io.trc import write_trc
from tests.tiny_body import random_sequence

runner = CliRunner()
F = 12
Y_TO_Z = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


def read_trc(path):
    """OpenSim TRC: 5 header lines, an empty line, then Frame#, Time, X Y Z per marker (empty = missing)."""
    lines = path.read_text().split("\n")
    assert lines[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"]
    keys, values = lines[1].split("\t"), lines[2].split("\t")
    header = dict(zip(keys, values))
    names = [n for n in lines[3].split("\t")[2:] if n]
    assert lines[4].split("\t")[2:5] == ["X1", "Y1", "Z1"] and lines[5] == ""
    rows = [ln.split("\t") for ln in lines[6:] if ln]
    frames = np.array([int(r[0]) for r in rows])
    time = np.array([float(r[1]) for r in rows])
    data = np.array([[float(v) if v else np.nan for v in r[2:]] for r in rows]).reshape(len(rows), -1, 3)
    return header, names, frames, time, data


def joints_of(body, seq):
    with torch.no_grad():
        out = body.forward(torch.as_tensor(seq.global_orient), torch.as_tensor(seq.body_pose),
                           torch.as_tensor(seq.betas)[None].expand(seq.num_frames, -1), torch.as_tensor(seq.trans))
    return out.joints.double().numpy(), out.vertices.double().numpy()


@pytest.fixture(scope="module")
def case(tiny_body_path):
    body = load_body(tiny_body_path)
    return body, random_sequence(F, body.name, seed=4, fps=60.0)


@pytest.mark.parametrize("up", ["y", "z"])
def test_trc_joints_in_mm_and_the_up_axis(tmp_path, tiny_body_path, case, up):
    body, seq = case
    save_sequence(tmp_path / "smpl.npz", seq)
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "--fmt", "trc", "--points", "joints", "--up", up,
                            "--body", str(tiny_body_path)])
    assert r.exit_code == 0, r.output
    header, names, frames, time, data = read_trc(tmp_path / "smpl.trc")
    assert header["Units"] == "mm" and float(header["DataRate"]) == 60 and int(header["NumFrames"]) == F
    assert int(header["NumMarkers"]) == 24 and names == list(JOINT_NAMES)
    np.testing.assert_array_equal(frames, np.arange(1, F + 1))
    np.testing.assert_allclose(time, np.arange(F) / 60.0, atol=1e-6)
    expected = joints_of(body, seq)[0] * 1000
    if up == "z":
        expected = expected @ Y_TO_Z.T
    assert np.abs(data - expected).max() < 0.01  # mm, 3 decimals in the file


def test_trc_missing_points_are_empty_fields(tmp_path):
    pos = np.random.default_rng(0).normal(size=(3, 2, 3))
    pos[1, 0] = np.nan
    write_trc(tmp_path / "m.trc", pos, ["a", "b"], 30.0)
    _, names, _, _, data = read_trc(tmp_path / "m.trc")
    assert names == ["a", "b"] and np.isnan(data[1, 0]).all()
    np.testing.assert_allclose(data[~np.isnan(data)], (pos * 1000)[~np.isnan(pos)], atol=1e-3)


@pytest.mark.skipif(not OPEN_BODY_FILE.is_file(), reason="bundled body not built")
@pytest.mark.parametrize("up", ["y", "z"])
def test_c3d_markers_read_by_the_c3d_package(tmp_path, up):
    c3d = pytest.importorskip("c3d")
    from mocap.body.keypoints import marker_vertex_ids

    body = load_body("open")
    seq = random_sequence(F, body.name, seed=5, fps=50.0)
    save_sequence(tmp_path / "smpl.npz", seq)
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "--fmt", "c3d", "--up", up])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "smpl.c3d", "rb") as f:
        reader = c3d.Reader(f)
        labels = [s.strip() for s in reader.point_labels]
        assert reader.point_rate == 50.0 and len(labels) == 67 and labels[:3] == ["LFHD", "LBHD", "LCHEECK"]
        assert reader.get("POINT:UNITS").string_value.strip() == "mm"
        assert reader.get("POINT:Y_SCREEN").string_value.strip() == f"+{up.upper()}"
        points = np.array([p[:, :3] for _, p, _ in reader.read_frames()])
    expected = joints_of(body, seq)[1][:, marker_vertex_ids(body)] * 1000
    if up == "z":
        expected = expected @ Y_TO_Z.T
    assert points.shape == (F, 67, 3)
    assert np.abs(points - expected).max() < 0.01  # float32 in the file, mm


@pytest.mark.skipif(not OPEN_BODY_FILE.is_file(), reason="bundled body not built")
def test_trc_keypoints_of_a_detector_layout(tmp_path):
    from mocap.body.keypoints import body_keypoints, keypoint_spec

    body = load_body("open")
    seq = random_sequence(F, body.name, seed=6)
    save_sequence(tmp_path / "smpl.npz", seq)
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "-o", str(tmp_path / "k.trc"), "--points", "body25"])
    assert r.exit_code == 0, r.output
    _, names, _, _, data = read_trc(tmp_path / "k.trc")
    spec = keypoint_spec(body, "body25")
    assert names == list(spec.names) and names[1] == "neck"
    with torch.no_grad():
        expected = body_keypoints(body, spec, *(torch.as_tensor(a, dtype=body.dtype) for a in
                                                (seq.global_orient, seq.body_pose, np.broadcast_to(seq.betas, (F, 10)).copy(), seq.trans)))
    assert np.abs(data - expected.double().numpy() * 1000).max() < 0.05
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "--fmt", "trc", "--points", "hands"])
    assert r.exit_code == 2 and "--points hands" in r.output
