"""GLB export (binary glTF 2.0): the subject's mesh skinned to SMPL's skeleton, with one animation of the sequence.

glTF's own conventions match ours: metres, y up, a character faces +z. Joint nodes carry the rest offsets
(identity rest rotations, as SMPL), the skin's inverse bind matrices are the inverse rest translations, and the
animation has one rotation channel per joint plus the root's translation, sampled at ``i / fps`` with LINEAR
interpolation (slerp). Data are float32, as glTF requires.

Skin influences: SMPL-style bodies give some vertices more than 4 weights (the bundled body: 539 of 13,718
vertices, up to 7, around the spine, collars and shoulders). glTF stores them in sets of four
(JOINTS_0/WEIGHTS_0, JOINTS_1/WEIGHTS_1); readers of every set (Blender, Babylon.js, Assimp) skin exactly.
three.js reads the first set only and renormalises it, so the first set holds each vertex's four largest
weights: there the vertices with at most 4 weights stay exact and the others land within 17 mm at worst
(99.3-99.6 % of the vertices within 1 mm on the synthetic motions; benchmarks/glb_influences.py). Writing four
weights only would cost the exact readers that accuracy and gain three.js nothing: no choice of 4 rigid joints
per vertex (other subsets, least-squares weights) came closer in our trials.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from mocap.errors import MissingDependencyError
from mocap.io.atomic import atomic_path
from mocap.io.rig import Rig, continuous_quaternions, local_rotations, root_positions
from mocap.io.smpl_npz import SmplSequence

_FLOAT, _UNSIGNED_BYTE, _UNSIGNED_INT = 5126, 5121, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def write_glb(path: str | os.PathLike, seq: SmplSequence, rig: Rig, name: str = "motion",
              progress: Callable[[int, int], None] | None = None) -> None:
    """Write ``seq`` on ``rig`` as a skinned, animated ``.glb``, atomically. ``name`` names the animation."""
    try:
        import pygltflib as g
    except ImportError:
        raise MissingDependencyError("GLB export needs pygltflib: pip install pygltflib") from None
    F, J = seq.num_frames, len(rig.names)
    quats = continuous_quaternions(local_rotations(seq), F)  # (F, J, 4) xyzw, glTF's order
    if progress:
        progress(1, 3)

    blob = bytearray()
    views: list = []
    accessors: list = []

    def add(array: np.ndarray, kind: str, component: int, target: int | None = None, bounds: bool = False) -> int:
        """Append ``array`` to the binary chunk as its own buffer view; return its accessor's index."""
        dtype = {_FLOAT: np.float32, _UNSIGNED_BYTE: np.uint8, _UNSIGNED_INT: np.uint32}[component]
        data = np.ascontiguousarray(array, dtype=dtype)
        blob.extend(b"\0" * (-len(blob) % 4))  # glTF aligns every view to 4 bytes
        views.append(g.BufferView(buffer=0, byteOffset=len(blob), byteLength=data.nbytes, target=target))
        blob.extend(data.tobytes())
        flat = data.reshape(len(data), -1)
        accessors.append(g.Accessor(
            bufferView=len(views) - 1, componentType=component, count=len(data), type=kind,
            min=flat.min(0).tolist() if bounds else None, max=flat.max(0).tolist() if bounds else None))
        return len(accessors) - 1

    verts = rig.vertices.astype(np.float32)
    attributes = {"POSITION": add(verts, "VEC3", _FLOAT, _ARRAY_BUFFER, bounds=True),
                  "NORMAL": add(_vertex_normals(rig.vertices, rig.faces), "VEC3", _FLOAT, _ARRAY_BUFFER)}
    for k, (joints, weights) in enumerate(_influence_sets(rig.weights)):
        attributes[f"JOINTS_{k}"] = add(joints, "VEC4", _UNSIGNED_BYTE, _ARRAY_BUFFER)
        attributes[f"WEIGHTS_{k}"] = add(weights, "VEC4", _FLOAT, _ARRAY_BUFFER)
    indices = add(rig.faces.reshape(-1), "SCALAR", _UNSIGNED_INT, _ELEMENT_ARRAY_BUFFER)
    inverse_bind = np.tile(np.eye(4), (J, 1, 1))
    inverse_bind[:, :3, 3] = -rig.rest_joints
    bind = add(inverse_bind.transpose(0, 2, 1).reshape(J, 16), "MAT4", _FLOAT)  # glTF matrices are column-major

    times = add(np.arange(F) / seq.fps, "SCALAR", _FLOAT, bounds=True)
    samplers = [g.AnimationSampler(input=times, output=add(root_positions(seq, rig), "VEC3", _FLOAT),
                                   interpolation="LINEAR")]
    channels = [g.AnimationChannel(sampler=0, target=g.AnimationChannelTarget(node=0, path="translation"))]
    for j in range(J):
        samplers.append(g.AnimationSampler(input=times, output=add(quats[:, j], "VEC4", _FLOAT), interpolation="LINEAR"))
        channels.append(g.AnimationChannel(sampler=j + 1, target=g.AnimationChannelTarget(node=j, path="rotation")))
    if progress:
        progress(2, 3)

    nodes = [g.Node(name=rig.names[j], translation=rig.offsets[j].tolist(),
                    children=[c for c in range(J) if rig.parents[c] == j] or None) for j in range(J)]
    nodes.append(g.Node(name="body", mesh=0, skin=0))
    root = int(np.flatnonzero(rig.parents < 0)[0])
    gltf = g.GLTF2(
        asset=g.Asset(generator="mocap", version="2.0"), scene=0, scenes=[g.Scene(nodes=[root, J])], nodes=nodes,
        meshes=[g.Mesh(name=rig.body_name, primitives=[g.Primitive(attributes=g.Attributes(**attributes), indices=indices)])],
        skins=[g.Skin(name="smpl", joints=list(range(J)), skeleton=root, inverseBindMatrices=bind)],
        animations=[g.Animation(name=name, samplers=samplers, channels=channels)],
        accessors=accessors, bufferViews=views, buffers=[g.Buffer(byteLength=len(blob))])
    gltf.set_binary_blob(bytes(blob))
    with atomic_path(path) as tmp:
        gltf.save_binary(str(tmp))
    if progress:
        progress(3, 3)


def _influence_sets(weights: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(V, J)`` weights -> sets of four ``(joint ids (V, 4), weights (V, 4))``, as many as the busiest vertex needs.

    Largest weights first, so that a reader of the first set only (three.js) gets each vertex's four largest
    (module docstring). Weights are renormalised to sum to one over all sets, which glTF requires.
    """
    n = max(int((weights > 0).sum(1).max()), 1)
    n = -(-n // 4) * 4
    ids = np.argsort(-weights, axis=1, kind="stable")[:, :n]
    w = np.take_along_axis(weights, ids, 1)
    w = w / w.sum(1, keepdims=True)
    ids = np.where(w > 0, ids, 0)
    return [(ids[:, k:k + 4], w[:, k:k + 4]) for k in range(0, n, 4)]


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V, 3)`` area-weighted unit normals, so that viewers shade the body smooth."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
