"""One entry point for every export format, and the choice of body model a sequence needs.

Formats: ``npz`` / ``h5`` (AMASS-style arrays, :mod:`mocap.io.smpl_npz`), ``bvh`` (:mod:`mocap.io.bvh`),
``fbx`` (:mod:`mocap.io.fbx`, needs the ``fbx`` extra), ``glb`` (:mod:`mocap.io.gltf`), ``trc`` (OpenSim markers,
:mod:`mocap.io.trc`) and ``c3d`` (:mod:`mocap.io.c3d`). All but npz/h5 need the body model the sequence was fitted
with (its ``surface_model``), for the subject's skeleton and mesh; npz/h5 need it for ``up="z"`` (the pelvis).

Up axis (:mod:`mocap.io.amass`): ``y`` (mocap's world) or ``z`` (AMASS's) for npz, h5, bvh, trc and c3d; glTF is
y-up by its specification and FBX's axes are set by Blender's exporter, so glb and fbx are y-up only.

TRC and C3D points (``points``): ``markers``, the body's 67 mocap-marker vertices (ReFit's marker set, named as
in a Vicon/MoSh marker protocol: LFHD, C7, LKNE...); ``joints``, SMPL's 24 joint centres; or a detector layout
(``blazepose33``, ``body25``, ``coco17``, ``coco18``): the fitted body's points at that detector's keypoints (3D
keypoints, e.g. BODY_25 for Pose2Sim's OpenSim models).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from mocap.body.arrays import BodyArrays, load_body_arrays
from mocap.errors import ConfigError, InputDataError
from mocap.keypoint_formats import KEYPOINT_NAMES
from mocap.io.amass import UP_AXES, to_up_axis
from mocap.io.smpl_npz import SmplSequence, save_sequence

FORMATS = {"npz": (".npz",), "h5": (".h5", ".hdf5"), "bvh": (".bvh",), "fbx": (".fbx",), "glb": (".glb",),
           "trc": (".trc",), "c3d": (".c3d",)}
POINT_SETS = ("markers", "joints", *KEYPOINT_NAMES)
_Y_UP_ONLY = ("fbx", "glb")


def default_output(result: Path, fmt: str, smplh: bool = False) -> Path:
    """``output/smpl.npz`` -> ``output/smpl.bvh`` etc.; never the input itself (``smpl_smplh.npz``, ``smpl_export.npz``)."""
    out = result.with_suffix(FORMATS[fmt][0])
    if smplh:
        out = out.with_stem(f"{out.stem}_smplh")
    if out.resolve() == result.resolve():
        out = out.with_stem(f"{out.stem}_export")
    return out


def body_for(seq: SmplSequence, spec: str | None = None):
    """The body model of ``seq`` as a torch layer (`BodyModel`); see :func:`body_arrays_for`."""
    from mocap.body.model import BodyModel

    arrays = body_arrays_for(seq, spec)
    return BodyModel(arrays.data, arrays.name, arrays.topology, arrays.gender)


def body_arrays_for(seq: SmplSequence, spec: str | None = None) -> BodyArrays:
    """The body model file of ``seq``: its ``surface_model``, or ``spec`` (``open``, ``smpl``, a path) if given.

    Raises:
        InputDataError: ``surface_model`` names no body we know how to find and no ``spec`` was given, or ``spec``
            is a different body from the one the sequence was fitted with (its betas would mean another shape).
    """
    if spec is None:
        if seq.surface_model == "open_body_neutral":
            spec = "open"
        elif seq.surface_model == f"smpl_{seq.gender}":
            spec = "smpl"
        else:
            raise InputDataError(f"unknown body model {seq.surface_model!r} in the sequence; pass --body with the "
                                 "body model file it was fitted with")
    body = load_body_arrays(spec, gender=seq.gender)
    if body.name != seq.surface_model:
        raise InputDataError(f"the sequence was fitted with the body {seq.surface_model!r} but {spec} is "
                             f"{body.name!r}; pass the body model it was fitted with")
    return body


def point_tracks(seq: SmplSequence, body, points: str = "markers", chunk: int = 1024) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(F, N, 3)`` world positions (metres) of the named point set on the posed body, and their names."""
    import torch

    from mocap.body.keypoints import body_keypoints, keypoint_spec, marker_names, marker_vertex_ids
    from mocap.body.model import JOINT_NAMES

    if points not in POINT_SETS:
        raise ConfigError(f"--points {points}: use one of {', '.join(POINT_SETS)}")
    spec = keypoint_spec(body, points) if points in KEYPOINT_NAMES else None
    vids = marker_vertex_ids(body) if points == "markers" else None
    out = []
    betas = torch.as_tensor(seq.betas[None], dtype=body.dtype)
    for s in range(0, seq.num_frames, chunk):
        go, bp, tr = (torch.as_tensor(a[s:s + chunk], dtype=body.dtype)
                      for a in (seq.global_orient, seq.body_pose, seq.trans))
        b = betas.expand(len(go), -1)
        with torch.no_grad():
            if spec is not None:
                p = body_keypoints(body, spec, go, bp, b, tr)
            else:
                joints, verts = body.points(go, bp, b, tr, vertex_ids=vids)
                p = verts if vids is not None else joints
        out.append(p.double().numpy())
    names = spec.names if spec is not None else marker_names(body) if vids is not None else JOINT_NAMES
    return np.concatenate(out), tuple(names)


def _check_request(path: Path, fmt: str, units: str, smplh: bool, up: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if path.suffix.lower() not in FORMATS[fmt]:
        raise ConfigError(f"{path}: a {fmt} file must end in {' or '.join(FORMATS[fmt])}")
    if path.is_dir():
        raise InputDataError(f"{path}: is a folder; give a file name")
    if units != "m" and fmt != "bvh":
        raise ConfigError("--units applies to bvh only (npz, h5 and glb are in metres, trc and c3d in millimetres; "
                          "FBX readers scale to their unit)")
    if smplh and fmt not in ("npz", "h5"):
        raise ConfigError("--amass-smplh applies to npz and h5 only")
    if up not in UP_AXES:
        raise ConfigError(f"--up {up}: use y or z")
    if up != "y" and fmt in _Y_UP_ONLY:
        raise ConfigError(f"--up {up}: {fmt} is y-up by its own convention (glTF's specification, Blender's FBX axes)")


def export_sequence(seq: SmplSequence, path: str | os.PathLike, fmt: str, body_spec: str | None = None,
                    units: str = "m", smplh: bool = False, up: str = "y", points: str = "markers",
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``seq`` (mocap's y-up world) to ``path`` in ``fmt``, atomically; return the path.

    Args:
        body_spec: body model override (see :func:`body_for`); npz/h5 need none unless ``up`` is z.
        units: ``m`` or ``cm``, BVH only. smplh: AMASS's SMPL-H layout, npz/h5 only.
        up: the up axis of the file's world (module docstring). points: the TRC/C3D point set.
    """
    path = Path(path)
    _check_request(path, fmt, units, smplh, up)
    # Only TRC/C3D pose the body (torch); the others need the rest pose, which numpy gives without torch's start-up.
    arrays = body_arrays_for(seq, body_spec) if fmt not in ("npz", "h5") or up != "y" else None
    if up != "y":
        seq = to_up_axis(seq, "y", up, arrays)
    if fmt in ("npz", "h5"):
        save_sequence(path, seq, smplh=smplh, up_axis=up)
        return path

    from mocap.io.rig import build_rig, check_finite

    check_finite(seq)
    if fmt in ("trc", "c3d"):
        from mocap.body.model import BodyModel

        body = BodyModel(arrays.data, arrays.name, arrays.topology, arrays.gender)
        positions, names = point_tracks(seq, body, points)
        if fmt == "trc":
            from mocap.io.trc import write_trc

            return write_trc(path, positions, names, seq.fps, progress=progress)
        from mocap.io.c3d import write_c3d

        return write_c3d(path, positions, names, seq.fps, up_axis=up)
    rig = build_rig(arrays, seq.betas)
    if fmt == "bvh":
        from mocap.io.bvh import write_bvh

        write_bvh(path, seq, rig, units=units, progress=progress)
    elif fmt == "fbx":
        from mocap.io.fbx import write_fbx

        write_fbx(path, seq, rig, name=path.stem, progress=progress)
    else:
        from mocap.io.gltf import write_glb

        write_glb(path, seq, rig, name=path.stem, progress=progress)
    return path
