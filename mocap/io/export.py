"""One entry point for every export format, and the choice of body model a sequence needs.

Formats: ``npz`` / ``h5`` (AMASS-style arrays, :mod:`mocap.io.smpl_npz`), ``bvh`` (:mod:`mocap.io.bvh`),
``fbx`` (:mod:`mocap.io.fbx`, needs the ``fbx`` extra), ``glb`` (:mod:`mocap.io.gltf`). All but npz/h5 need the
body model the sequence was fitted with (its ``surface_model``), for the subject's skeleton and mesh.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from mocap.errors import ConfigError, InputDataError
from mocap.io.smpl_npz import SmplSequence, save_sequence

FORMATS = {"npz": (".npz",), "h5": (".h5", ".hdf5"), "bvh": (".bvh",), "fbx": (".fbx",), "glb": (".glb",)}


def default_output(result: Path, fmt: str, smplh: bool = False) -> Path:
    """``output/smpl.npz`` -> ``output/smpl.bvh`` etc.; never the input itself (``smpl_smplh.npz``, ``smpl_export.npz``)."""
    out = result.with_suffix(FORMATS[fmt][0])
    if smplh:
        out = out.with_stem(f"{out.stem}_smplh")
    if out.resolve() == result.resolve():
        out = out.with_stem(f"{out.stem}_export")
    return out


def body_for(seq: SmplSequence, spec: str | None = None):
    """The body model of ``seq``: its ``surface_model``, or ``spec`` (``open``, ``smpl``, a path) if given.

    Raises:
        InputDataError: ``surface_model`` names no body we know how to find and no ``spec`` was given, or ``spec``
            is a different body from the one the sequence was fitted with (its betas would mean another shape).
    """
    from mocap.body.model import load_body

    if spec is None:
        if seq.surface_model == "open_body_neutral":
            spec = "open"
        elif seq.surface_model == f"smpl_{seq.gender}":
            spec = "smpl"
        else:
            raise InputDataError(f"unknown body model {seq.surface_model!r} in the sequence; pass --body with the "
                                 "body model file it was fitted with")
    body = load_body(spec, gender=seq.gender)
    if body.name != seq.surface_model:
        raise InputDataError(f"the sequence was fitted with the body {seq.surface_model!r} but {spec} is "
                             f"{body.name!r}; pass the body model it was fitted with")
    return body


def export_sequence(seq: SmplSequence, path: str | os.PathLike, fmt: str, body_spec: str | None = None,
                    units: str = "m", smplh: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``seq`` to ``path`` in ``fmt``, atomically; return the path.

    Args:
        body_spec: body model override (see :func:`body_for`); npz/h5 need none.
        units: ``m`` or ``cm``, BVH only. smplh: SMPL-H's 156 pose values, npz/h5 only.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if path.suffix.lower() not in FORMATS[fmt]:
        raise ConfigError(f"{path}: a {fmt} file must end in {' or '.join(FORMATS[fmt])}")
    if path.is_dir():
        raise InputDataError(f"{path}: is a folder; give a file name")
    if units != "m" and fmt != "bvh":
        raise ConfigError("--units applies to bvh only (npz, h5 and glb are in metres; FBX readers scale to their unit)")
    if smplh and fmt not in ("npz", "h5"):
        raise ConfigError("--amass-smplh applies to npz and h5 only")
    if fmt in ("npz", "h5"):
        save_sequence(path, seq, smplh=smplh)
        return path

    from mocap.io.rig import build_rig, check_finite

    check_finite(seq)
    rig = build_rig(body_for(seq, body_spec), seq.betas)
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
