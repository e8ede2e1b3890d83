"""Exports checked by independent readers against SMPL's own joints and vertices (smplx through the body layer).

BVH is read back with bvhio and its forward kinematics; GLB with pygltflib, posing the skeleton from the file's
nodes and animation and skinning the mesh from the file's weights and bind matrices. Blender reads all three
formats in tests/test_export_blender.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from mocap.body.model import JOINT_NAMES, OPEN_BODY_FILE, load_body
from mocap.cli import app
from mocap.errors import ConfigError, InputDataError, MissingDependencyError, MocapError
from mocap.io.bvh import write_bvh
from mocap.io.export import default_output, export_sequence
from mocap.io.gltf import write_glb
from mocap.io.rig import build_rig
from mocap.io.smpl_npz import load_sequence, save_sequence
from tests.tiny_body import random_sequence, reference_pose

MM = 1e-3
F = 40


@pytest.fixture(scope="module")
def body(tiny_body_path):
    return load_body(tiny_body_path)


@pytest.fixture(scope="module")
def seq(body):
    return random_sequence(F, body.name, seed=1)


@pytest.fixture(scope="module")
def rig(body, seq):
    return build_rig(body, seq.betas)


@pytest.fixture(scope="module", params=["tiny", "open"])
def case(request, body, seq, rig):
    """(body, seq, rig) for the tiny test body and for the bundled body (13,718 vertices, up to 7 weights each)."""
    if request.param == "tiny":
        return body, seq, rig
    if not OPEN_BODY_FILE.is_file():
        pytest.skip("bundled body not built")
    open_body = load_body("open")
    open_seq = random_sequence(F, open_body.name, seed=1)
    return open_body, open_seq, build_rig(open_body, open_seq.betas)


# --- BVH ---------------------------------------------------------------------------------------------------------

def bvhio_joints(path: Path, frames) -> tuple[np.ndarray, list[str]]:
    """World joint positions ``(N, 24, 3)`` in SMPL's joint order, by bvhio's forward kinematics."""
    import bvhio

    root = bvhio.readAsHierarchy(str(path))
    names = [j.Name for j, _, _ in root.layout()]
    out = []
    for f in frames:
        root.loadPose(int(f))
        pos = {j.Name: np.array(j.PositionWorld, dtype=float) for j, _, _ in root.layout()}
        out.append([pos[n] for n in JOINT_NAMES])
    return np.array(out), names


@pytest.mark.parametrize("units, scale", [("m", 1.0), ("cm", 100.0)])
def test_bvh_matches_smpl_joints_in_bvhio(tmp_path, case, units, scale):
    body, seq, rig = case
    path = tmp_path / "s.bvh"
    write_bvh(path, seq, rig, units=units)
    frames = np.arange(F)
    got, names = bvhio_joints(path, frames)
    ref, _ = reference_pose(body, seq, frames)
    assert sorted(names) == sorted(JOINT_NAMES)
    assert np.abs(got / scale - ref).max() < MM


def test_bvh_header(tmp_path, seq, rig):
    import bvhio

    path = tmp_path / "s.bvh"
    write_bvh(path, seq, rig, units="cm")
    bvh = bvhio.readAsBvh(str(path))
    assert bvh.FrameCount == F and bvh.FrameTime == pytest.approx(1 / seq.fps)
    assert bvh.Root.Name == "pelvis" and list(bvh.Root.Offset) == [0, 0, 0]
    assert bvh.Root.Channels == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    knee = bvh.Root.Children[0].Children[0]
    assert knee.Name == "left_knee" and knee.Channels == ["Zrotation", "Xrotation", "Yrotation"]
    np.testing.assert_allclose(np.array(knee.Offset) / 100, rig.rest_joints[4] - rig.rest_joints[1], atol=1e-7)


def test_bvh_other_euler_order(tmp_path, body, seq, rig):
    path = tmp_path / "s.bvh"
    write_bvh(path, seq, rig, order="YXZ")
    got, _ = bvhio_joints(path, [5, 30])
    assert np.abs(got - reference_pose(body, seq, [5, 30])[0]).max() < MM


# --- GLB ---------------------------------------------------------------------------------------------------------

class Glb:
    """A GLB file's arrays, read with pygltflib."""

    def __init__(self, path: Path):
        import pygltflib

        self.gltf = pygltflib.GLTF2.load_binary(str(path))
        self.blob = self.gltf.binary_blob()

    def accessor(self, index: int) -> np.ndarray:
        a = self.gltf.accessors[index]
        view = self.gltf.bufferViews[a.bufferView]
        dtype = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}[a.componentType]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a.type]
        return np.frombuffer(self.blob, dtype, a.count * width, view.byteOffset + (a.byteOffset or 0)).reshape(a.count, width)

    def pose(self, frame: int) -> np.ndarray:
        """``(nodes, 4, 4)`` world matrices of the nodes at key ``frame``: node TRS with the animation applied."""
        nodes = self.gltf.nodes
        T = np.array([n.translation or [0, 0, 0] for n in nodes], dtype=float)
        R = np.array([n.rotation or [0, 0, 0, 1] for n in nodes], dtype=float)
        for ch in self.gltf.animations[0].channels:
            value = self.accessor(self.gltf.animations[0].samplers[ch.sampler].output)[frame]
            (T if ch.target.path == "translation" else R)[ch.target.node] = value
        local = np.tile(np.eye(4), (len(nodes), 1, 1))
        local[:, :3, :3] = Rotation.from_quat(R).as_matrix()
        local[:, :3, 3] = T
        parent = {c: p for p, n in enumerate(nodes) for c in (n.children or [])}

        def resolve(i):
            return local[i] if i not in parent else resolve(parent[i]) @ local[i]

        return np.array([resolve(i) for i in range(len(nodes))])


def skin_vertices(glb: Glb, frame: int, sets: int | None = None) -> np.ndarray:
    """``(V, 3)`` the mesh at key ``frame``, skinned from the file's accessors with its first ``sets`` influence
    sets (all when None); a reader of fewer sets renormalises the weights it reads, as three.js does."""
    g = glb.gltf
    prim, skin = g.meshes[0].primitives[0], g.skins[0]
    present = [k for k in range(4) if getattr(prim.attributes, f"JOINTS_{k}", None) is not None][:sets]
    ids = np.concatenate([glb.accessor(getattr(prim.attributes, f"JOINTS_{k}")) for k in present], 1)
    weights = np.concatenate([glb.accessor(getattr(prim.attributes, f"WEIGHTS_{k}")) for k in present], 1).astype(float)
    weights /= weights.sum(1, keepdims=True)
    inverse_bind = glb.accessor(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    skinning = glb.pose(frame)[skin.joints] @ inverse_bind  # (J, 4, 4), glTF's skinning matrices
    M = np.einsum("vk,vkab->vab", weights, skinning[ids])
    rest = glb.accessor(prim.attributes.POSITION).astype(float)
    return np.einsum("vab,vb->va", M[:, :3, :3], rest) + M[:, :3, 3]


def test_glb_skeleton_and_skin_match_smpl(tmp_path, case):
    body, seq, rig = case
    path = tmp_path / "s.glb"
    write_glb(path, seq, rig, name="take1")
    glb = Glb(path)
    g = glb.gltf
    skin = g.skins[0]
    assert [g.nodes[j].name for j in skin.joints] == list(JOINT_NAMES)
    assert g.animations[0].name == "take1"
    times = glb.accessor(g.animations[0].samplers[0].input)[:, 0]
    np.testing.assert_allclose(times, np.arange(F) / seq.fps, atol=1e-6)
    prim = g.meshes[0].primitives[0]
    rest = glb.accessor(prim.attributes.POSITION).astype(float)
    assert len(rest) == body.num_vertices
    assert glb.accessor(prim.indices).size == body.faces.size
    weights = [glb.accessor(getattr(prim.attributes, f"WEIGHTS_{k}")) for k in range(4)
               if getattr(prim.attributes, f"WEIGHTS_{k}", None) is not None]
    np.testing.assert_allclose(np.concatenate(weights, 1).sum(1), 1, atol=1e-6)  # glTF: all sets sum to one

    frames = [0, 13, F - 1]
    ref_joints, ref_verts = reference_pose(body, seq, frames)
    for k, f in enumerate(frames):
        world = glb.pose(f)[skin.joints]
        assert np.abs(world[:, :3, 3] - ref_joints[k]).max() < MM
        assert np.abs(skin_vertices(glb, f) - ref_verts[k]).max() < MM


def test_glb_read_with_four_influences(tmp_path, case):
    """A reader of one influence set (three.js: 4 per vertex, renormalised) skins every vertex with at most 4
    weights exactly and the others as well as 4 rigid joints allow: the first set holds the 4 largest weights."""
    body, seq, rig = case
    path = tmp_path / "s.glb"
    write_glb(path, seq, rig)
    glb = Glb(path)
    frames = [0, 13, F - 1]
    _, ref_verts = reference_pose(body, seq, frames)
    few = (rig.weights > 0).sum(1) <= 4
    top = np.argsort(-rig.weights, axis=1, kind="stable")[:, :4]  # the best 4-influence reading we found
    top_w = np.take_along_axis(rig.weights, top, 1)
    top_w /= top_w.sum(1, keepdims=True)
    errors = []
    for k, f in enumerate(frames):
        four = skin_vertices(glb, f, sets=1)
        err = np.linalg.norm(four - ref_verts[k], axis=1)
        assert err[few].max() < MM
        # independently: linear blend skinning with the rig's own 4 largest weights, renormalised
        g = glb.gltf
        inverse_bind = glb.accessor(g.skins[0].inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
        S = glb.pose(f)[g.skins[0].joints] @ inverse_bind
        M = np.einsum("vk,vkab->vab", top_w, S[top])
        expected = np.einsum("vab,vb->va", M[:, :3, :3], rig.vertices) + M[:, :3, 3]
        assert np.abs(four - expected).max() < 1e-4
        errors.append(err)
    errors = np.concatenate(errors)
    if body.name == "open_body_neutral":  # 539 of 13,718 vertices have 5-7 weights (benchmarks/glb_influences.py)
        assert (errors <= MM).mean() > 0.97 and np.percentile(errors, 99) < 2 * MM and errors.max() < 20 * MM


# --- choosing the body, bad requests -----------------------------------------------------------------------------

def test_export_requires_the_fitted_body(tmp_path, tiny_body_path, seq):
    with pytest.raises(InputDataError, match="unknown body model 'tiny_body'"):
        export_sequence(seq, tmp_path / "s.bvh", "bvh")
    with pytest.raises(InputDataError, match="fitted with the body 'other'"):
        export_sequence(replace(seq, surface_model="other"), tmp_path / "s.bvh", "bvh", body_spec=str(tiny_body_path))
    export_sequence(seq, tmp_path / "s.bvh", "bvh", body_spec=str(tiny_body_path))
    assert (tmp_path / "s.bvh").is_file()
    # npz needs no body
    export_sequence(seq, tmp_path / "s.npz", "npz")


@pytest.mark.parametrize("kwargs, error", [
    ({"fmt": "obj"}, ConfigError), ({"fmt": "bvh", "name": "s.fbx"}, ConfigError),
    ({"fmt": "glb", "units": "cm"}, ConfigError), ({"fmt": "bvh", "smplh": True}, ConfigError),
    ({"fmt": "bvh", "units": "mm"}, ConfigError), ({"fmt": "bvh", "name": "folder.bvh"}, InputDataError),
])
def test_bad_requests(tmp_path, tiny_body_path, seq, kwargs, error):
    (tmp_path / "folder.bvh").mkdir()
    name = kwargs.pop("name", f"s.{kwargs['fmt']}")
    with pytest.raises(error):
        export_sequence(seq, tmp_path / name, body_spec=str(tiny_body_path), **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.bvh"]


def test_nan_frames_are_refused_by_exporters(tmp_path, seq, rig):
    poses = seq.poses.copy()
    poses[3] = np.nan
    with pytest.raises(InputDataError, match="1 frames"):
        write_bvh(tmp_path / "s.bvh", replace(seq, poses=poses), rig)
    assert not list(tmp_path.iterdir())


def test_default_output_never_overwrites_the_input():
    assert default_output(Path("out/smpl.npz"), "bvh") == Path("out/smpl.bvh")
    assert default_output(Path("out/smpl.npz"), "npz") == Path("out/smpl_export.npz")
    assert default_output(Path("out/smpl.npz"), "npz", smplh=True) == Path("out/smpl_smplh.npz")


def test_fbx_without_bpy_says_how_to_install(tmp_path, seq, rig, monkeypatch):
    from mocap.io import fbx

    monkeypatch.setattr(fbx, "bpy_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"mocap\[fbx\]"):
        fbx.write_fbx(tmp_path / "s.fbx", seq, rig)


def test_blender_crash_is_an_error_and_writes_nothing(tmp_path, seq, rig, monkeypatch):
    from mocap.io import fbx

    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('segfault-ish')\nopen(sys.argv[2], 'w').write('partial')\nsys.exit(139)\n")
    monkeypatch.setattr(fbx, "bpy_available", lambda: True)
    monkeypatch.setattr(fbx, "BLENDER_SCRIPT", script)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MocapError, match="exit code 139") as e:
        fbx.write_fbx(out / "s.fbx", seq, rig)
    assert "segfault-ish" in str(e.value)
    assert not list(out.iterdir())


# --- CLI ---------------------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_export(tmp_path, tiny_body_path, seq):
    poses = seq.poses.copy()
    poses[5:8] = np.nan
    save_sequence(tmp_path / "smpl.npz", replace(seq, poses=poses))
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "--fmt", "bvh", "--body", str(tiny_body_path),
                            "--units", "cm"])
    assert r.exit_code == 0, r.output
    assert "3 of 40 frames" in r.output and "5-7" in r.output
    assert (tmp_path / "smpl.bvh").read_text().startswith("HIERARCHY")

    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "-o", str(tmp_path / "a.h5"), "--amass-smplh"])
    assert r.exit_code == 0, r.output
    back = load_sequence(tmp_path / "a.h5")
    np.testing.assert_array_equal(back.poses[:5, :22], seq.poses[:5, :22])
    for f in (5, 6, 7):  # held frames: the last valid pose
        np.testing.assert_array_equal(back.poses[f, :22], seq.poses[4, :22])


@pytest.mark.parametrize("args, message", [
    (["--fmt", "bvh"], "unknown body model"),
    (["--fmt", "obj"], "unknown format"),
    (["-o", "x.abc"], "cannot tell the format"),
    ([], "give --fmt"),
])
def test_cli_errors_exit_2(tmp_path, seq, args, message):
    save_sequence(tmp_path / "smpl.npz", seq)
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), *args])
    assert r.exit_code == 2 and "error:" in r.output and message in r.output, r.output


def test_cli_bad_input_and_unwritable_output(tmp_path, seq):
    np.savez(tmp_path / "bad.npz", poses=np.zeros((3, 72)))
    r = runner.invoke(app, ["export", str(tmp_path / "bad.npz"), "--fmt", "npz"])
    assert r.exit_code == 2 and "lacks the keys" in r.output
    save_sequence(tmp_path / "smpl.npz", seq)
    (tmp_path / "file").write_text("")
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "-o", str(tmp_path / "file" / "x.npz")])
    assert r.exit_code == 2 and "a folder is needed" in r.output


@pytest.mark.skipif(not OPEN_BODY_FILE.is_file(), reason="bundled body not built yet")
def test_open_body_bvh_through_the_cli(tmp_path):
    body = load_body("open")
    seq = random_sequence(12, body.name, seed=2)
    save_sequence(tmp_path / "smpl.npz", seq)
    r = runner.invoke(app, ["export", str(tmp_path / "smpl.npz"), "--fmt", "bvh"])
    assert r.exit_code == 0, r.output
    got, _ = bvhio_joints(tmp_path / "smpl.bvh", range(12))
    assert np.abs(got - reference_pose(body, seq, range(12))[0]).max() < MM


def test_numpy_rest_pose_matches_the_torch_layer(case):
    import torch

    body, seq, rig = case
    with torch.no_grad():
        betas = torch.as_tensor(seq.betas[None], dtype=body.dtype)
        joints = body.rest_joints(betas)[0].double().numpy()
        L = body.layer
        vertices = (L.v_template + torch.einsum("vcb,b->vc", L.shapedirs, betas[0])).double().numpy()
    # float32 sums in torch, float64 here: they differ by float32 rounding of ~1 m values
    assert np.abs(rig.rest_joints - joints).max() < 1e-6 and np.abs(rig.vertices - vertices).max() < 1e-6
    np.testing.assert_array_equal(rig.weights, L.lbs_weights.double().numpy())


def test_bvh_and_glb_export_load_no_torch(tmp_path, tiny_body_path, seq):
    import subprocess
    import sys

    save_sequence(tmp_path / "smpl.npz", seq)
    code = ("import sys; from mocap.cli import main; sys.argv = ['mocap', 'export', sys.argv[1], '-o', sys.argv[2], "
            "'--body', sys.argv[3]]\ntry:\n main()\nexcept SystemExit as e:\n assert not e.code, e.code\n"
            "print(sorted(m for m in ('torch', 'smplx', 'roma') if m in sys.modules))")
    for out in ("a.bvh", "a.glb"):
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "smpl.npz"), str(tmp_path / out),
                            str(tiny_body_path)], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        assert r.returncode == 0 and r.stdout.strip().endswith("[]"), r.stdout + r.stderr
        assert (tmp_path / out).stat().st_size > 0
