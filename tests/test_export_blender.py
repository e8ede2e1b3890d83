"""Blender reads our FBX, BVH and GLB: its own importers, in a fresh process, against SMPL's joints and vertices.

Skipped without bpy (the ``fbx`` extra). Each file is read by tests/blender_readback.py, which reports what
Blender sees in its z-up world; SMPL's y-up is Blender's z-up turned by -90 degrees about x.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mocap.body.model import JOINT_NAMES, OPEN_BODY_FILE, load_body
from mocap.io.bvh import write_bvh
from mocap.io.fbx import bpy_available, write_fbx
from mocap.io.gltf import write_glb
from mocap.io.rig import build_rig
from tests.tiny_body import random_sequence, reference_pose

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not bpy_available(), reason="bpy (the fbx extra) not installed")]

MM = 1e-3
F = 36
FRAMES = [0, 7, 20, F - 1]
READBACK = Path(__file__).with_name("blender_readback.py")
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@pytest.fixture(scope="module")
def case(tiny_body_path):
    body = load_body(tiny_body_path)
    seq = random_sequence(F, body.name, seed=4, fps=25.0)
    return body, seq, build_rig(body, seq.betas)


def blender_reads(path: Path, fps: float, tmp_path: Path) -> dict[str, np.ndarray]:
    out = tmp_path / "readback.npz"
    run = subprocess.run([sys.executable, str(READBACK), str(path), str(out), str(fps), *map(str, FRAMES)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    d = dict(np.load(out))
    order = [list(d["bone_names"]).index(n) for n in JOINT_NAMES]
    d["joints"] = d["heads"][:, order] @ Z_UP_TO_Y_UP.T
    if "vertices" in d:
        d["vertices"] = d["vertices"] @ Z_UP_TO_Y_UP.T
    return d


@pytest.fixture(scope="module")
def open_case():
    if not OPEN_BODY_FILE.is_file():
        pytest.skip("bundled body not built")
    body = load_body("open")
    seq = random_sequence(F, body.name, seed=5, fps=25.0)
    return body, seq, build_rig(body, seq.betas)


@pytest.mark.parametrize("which", ["case", "open_case"])
def test_fbx_in_blender(tmp_path, request, which):
    body, seq, rig = request.getfixturevalue(which)
    path = tmp_path / "walk.fbx"
    steps = []
    write_fbx(path, seq, rig, name="walk", progress=lambda d, t: steps.append((d, t)))
    assert steps[-1][0] == steps[-1][1]
    d = blender_reads(path, 10.0, tmp_path)  # a wrong rate, which the importer must replace by the file's
    assert sorted(d["bone_names"]) == sorted(JOINT_NAMES) and int(d["num_armatures"]) == 1
    assert list(d["actions"]) == ["SMPL|walk"]  # one action, named after the file
    assert float(d["fps"]) == pytest.approx(seq.fps) and d["frame_range"] == pytest.approx([0, F - 1])
    assert d["vertex_counts"].tolist() == [body.num_vertices]
    joints, verts = reference_pose(body, seq, FRAMES)
    assert np.abs(d["joints"] - joints).max() < MM
    assert np.abs(d["vertices"] - verts).max() < MM  # skin weights and bind pose, through Blender's deformer


def test_fbx_fractional_rate(tmp_path, case):
    body, seq, rig = case
    seq = replace(seq, poses=seq.poses[:6], trans=seq.trans[:6], fps=29.97)
    write_fbx(tmp_path / "ntsc.fbx", seq, rig)
    d = blender_reads(tmp_path / "ntsc.fbx", 10.0, tmp_path)
    # Blender keeps a rate as an integer over a float32 divisor (29.97 -> 29.97003), and its importer turns the
    # file's key times into frames at the integer rate: the last key, at 5 / 29.97 s, lands on frame 5 * 30 / 29.97.
    assert float(d["fps"]) == pytest.approx(29.97, rel=1e-5)
    assert d["frame_range"] == pytest.approx([0, 5 * 30 / 29.97], rel=1e-5)


def test_bvh_in_blender(tmp_path, case):
    body, seq, rig = case
    seq = replace(seq, fps=29.97)
    path = tmp_path / "walk.bvh"
    write_bvh(path, seq, rig, units="cm")
    d = blender_reads(path, 10.0, tmp_path)  # the importer takes the rate from the file's frame time
    assert sorted(d["bone_names"]) == sorted(JOINT_NAMES)
    assert float(d["fps"]) == pytest.approx(seq.fps, rel=1e-5) and d["frame_range"] == pytest.approx([0, F - 1])
    assert np.abs(d["joints"] / 100 - reference_pose(body, seq, FRAMES)[0]).max() < MM


def test_glb_in_blender(tmp_path, case):
    body, seq, rig = case
    path = tmp_path / "walk.glb"
    write_glb(path, seq, rig, name="walk")
    d = blender_reads(path, seq.fps, tmp_path)  # glTF keys are in seconds: the scene's rate turns them into frames
    assert sorted(d["bone_names"]) == sorted(JOINT_NAMES)
    assert d["frame_range"] == pytest.approx([0, F - 1], abs=1e-3)
    assert d["vertex_counts"].tolist() == [body.num_vertices]
    joints, verts = reference_pose(body, seq, FRAMES)
    assert np.abs(d["joints"] - joints).max() < MM
    assert np.abs(d["vertices"] - verts).max() < MM
