"""AMASS's conventions in one place: its z-up world, its SMPL-H file layout, and AMASS files without mocap's keys.

**Up axis.** mocap's world is y up (SMPL's own frame: the body faces +z in its rest pose). AMASS's is z up. The
z-up world is mocap's turned by +90 degrees about x (``y -> z``, ``z -> -y``, x unchanged), so a body facing +z
in mocap's frame faces -y in the z-up one. A world rotation ``R`` changes ``global_orient`` to
``R @ global_orient`` and moves ``trans`` so that the pelvis, which SMPL rotates about its own rest position
``J0`` (from the betas), lands at ``R @ (J0 + trans)``: ``trans' = R @ (J0 + trans) - J0``. That is why the
conversion needs the body model. Files record their axis in ``up_axis`` (``"y"`` or ``"z"``).

**SMPL-H layout** (``mocap export --amass-smplh``, written by :func:`mocap.io.smpl_npz.save_sequence`), what
AMASS's own loaders index:
``poses`` ``(F, 156)``: the root and 21 body joints (SMPL's first 22, same order) then 30 hand joints x 3 = 90
zero values (hands at rest: mocap fits no fingers; SMPL's two hand joints have no SMPL-H counterpart and are
dropped); ``betas`` ``(16,)``: the sequence's 10 then 6 zeros; ``dmpls`` ``(F, 8)``: zeros (AMASS's dynamic
soft-tissue coefficients; mocap estimates none, and zero means none); plus ``trans``, ``gender``,
``mocap_framerate`` and mocap's own keys. **Betas are not portable between body models**: the bundled ``open``
body's betas span its own shape space, not SMPL-H's, so an SMPL-H model given them has another shape; and
SMPL's betas are close to, not equal to, SMPL-H's. The poses are shared by all three.

**Foreign files** (`load_motion`): AMASS-style ``poses`` (72, 156 or 165 values per frame: the first 66 are
read for 156/165), ``trans``, ``betas`` (the first 10 are used; others are dropped with a note) and
``mocap_framerate`` (or ``mocap_frame_rate``, as AMASS's SMPL-X release spells it), without ``surface_model``: the body comes from the caller (``--body``), the gender from the
file or ``--gender``. The input's up axis is the file's ``up_axis``, else the caller's, else detected: the
body's up direction (the root's rest y axis turned by ``global_orient``), averaged over the frames, points
along +y or +z; a take with no clear answer (a body lying down) asks for it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from mocap.errors import InputDataError
from mocap.io.smpl_npz import NUM_BETAS, REQUIRED_KEYS, SmplSequence, read_arrays, sequence_from_arrays

UP_AXES = ("y", "z")
#: y-up world -> z-up world (+90 degrees about x).
Y_TO_Z = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_MIN_UP_COMPONENT = 0.5  # mean up vector component that counts as "clearly along this axis"


def world_rotation(src: str, dst: str) -> np.ndarray:
    """``(3, 3)`` rotation taking world coordinates with up axis ``src`` to up axis ``dst``."""
    for axis in (src, dst):
        if axis not in UP_AXES:
            raise InputDataError(f"up axis {axis!r}: use y or z")
    if src == dst:
        return np.eye(3)
    return Y_TO_Z if dst == "z" else Y_TO_Z.T


def rotate_world(global_orient: np.ndarray, trans: np.ndarray, pelvis_rest: np.ndarray,
                 R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same motion in a world turned by ``R`` (3, 3).

    Args:
        global_orient: ``(F, 3)`` axis-angle; trans: ``(F, 3)`` metres; pelvis_rest: ``(3,)`` or ``(F, 3)`` the
            rest-pose pelvis ``J0`` of the shaped body. NaN frames stay NaN.
    Returns:
        ``(F, 3)`` global_orient and ``(F, 3)`` trans.
    """
    from scipy.spatial.transform import Rotation  # imported here: 0.4 s of CPU that readers of results skip

    go = np.asarray(global_orient, dtype=np.float64)
    ok = np.isfinite(go).all(1)
    out = np.full_like(go, np.nan)
    out[ok] = (Rotation.from_matrix(R) * Rotation.from_rotvec(go[ok])).as_rotvec()
    j0 = np.broadcast_to(np.asarray(pelvis_rest, dtype=np.float64), go.shape)
    return out, (np.asarray(trans, dtype=np.float64) + j0) @ R.T - j0


def detect_up_axis(global_orient: np.ndarray) -> str | None:
    """``"y"`` or ``"z"``: the world axis the body's up direction points along on average; None when unclear."""
    from scipy.spatial.transform import Rotation

    go = np.asarray(global_orient, dtype=np.float64)
    go = go[np.isfinite(go).all(1)]
    if not len(go):
        return None
    up = Rotation.from_rotvec(go).apply([0.0, 1.0, 0.0]).mean(0)
    axis = "y" if up[1] >= up[2] else "z"
    return axis if up["yz".index(axis) + 1] >= _MIN_UP_COMPONENT else None


def pelvis_rest(body, betas: np.ndarray) -> np.ndarray:
    """``(3,)`` the rest-pose pelvis of ``body`` (`BodyArrays`, or a `BodyModel`: its file's arrays) shaped by
    ``betas`` (10,)."""
    from mocap.body.arrays import BodyArrays

    arrays = body if isinstance(body, BodyArrays) else body.arrays
    return arrays.shaped(betas)[0][0]


def to_up_axis(seq: SmplSequence, src: str, dst: str, body) -> SmplSequence:
    """``seq`` (whose world has up axis ``src``) in a world with up axis ``dst``; ``body`` gives the pelvis."""
    if src == dst:
        return seq
    go, trans = rotate_world(seq.global_orient, seq.trans, pelvis_rest(body, seq.betas), world_rotation(src, dst))
    poses = seq.poses.copy()
    poses[:, 0] = go
    return replace(seq, poses=poses, trans=trans)


def _file_up(arrays: dict, path: Path) -> str | None:
    if "up_axis" not in arrays:
        return None
    axis = str(np.asarray(arrays.pop("up_axis")).reshape(-1)[0])
    if axis not in UP_AXES:
        raise InputDataError(f"{path}: up_axis {axis!r} is not y or z")
    return axis


def _foreign_arrays(arrays: dict, path: Path, gender: str | None, notes: list[str]) -> dict:
    """An AMASS-style file's arrays in mocap's layout (10 betas, a placeholder surface_model, no extras)."""
    betas = np.asarray(arrays["betas"], dtype=np.float64).reshape(-1)
    if betas.size > NUM_BETAS and np.any(betas[NUM_BETAS:] != 0):
        notes.append(f"{path.name}: {betas.size} betas, the first {NUM_BETAS} used (betas belong to the file's own "
                     "body model; another model gives another shape)")
    out = {k: arrays[k] for k in ("poses", "trans", "mocap_framerate")}
    out["betas"] = np.pad(betas[:NUM_BETAS], (0, max(0, NUM_BETAS - betas.size)))
    out["gender"] = arrays.get("gender", np.array(gender or "neutral"))
    out["surface_model"] = np.array("unknown")  # the caller's body names it
    return out  # AMASS's extras (dmpls, marker data...) are not per-frame quality of a fit: dropped


def load_motion(path: str | os.PathLike, body: str | None = None, gender: str | None = None,
                up: str | None = None) -> tuple[SmplSequence, list[str]]:
    """Any SMPL sequence file as a y-up `SmplSequence` of the body it belongs to, and notes for the user.

    mocap's own files load as they are (``body``/``gender`` override theirs). AMASS-style files without
    ``surface_model`` need ``body``. Input up axis: the file's ``up_axis``, else ``up``, else y for mocap's own
    files and detected for others (module docstring).

    Raises:
        InputDataError: a key is missing, no body is given for a foreign file, or the up axis is unclear.
    """
    from mocap.body.arrays import load_body_arrays
    from mocap.io.export import body_arrays_for

    path = Path(path)
    arrays = read_arrays(path)
    notes: list[str] = []
    src = _file_up(arrays, path) or up
    if "mocap_framerate" not in arrays and "mocap_frame_rate" in arrays:  # AMASS's SMPL-X releases spell it so
        arrays["mocap_framerate"] = arrays.pop("mocap_frame_rate")
    own = all(k in arrays for k in REQUIRED_KEYS)
    if not own:
        missing = [k for k in ("poses", "trans", "betas", "mocap_framerate") if k not in arrays]
        if missing:
            raise InputDataError(f"{path}: not an SMPL sequence, lacks the keys {', '.join(missing)}")
        if body is None:
            raise InputDataError(f"{path}: names no body model (no surface_model, e.g. an AMASS file); pass --body "
                                 "open|smpl|FILE (and --gender if the file has none)")
        arrays = _foreign_arrays(arrays, path, gender, notes)
    if gender is not None:
        arrays["gender"] = np.array(gender)
    seq = sequence_from_arrays(arrays, path)
    model = None
    if body is not None:
        model = load_body_arrays(body, seq.gender)
        if own and model.name != seq.surface_model:
            notes.append(f"{path.name}: fitted with {seq.surface_model}, read with {model.name} (--body)")
        seq = replace(seq, surface_model=model.name)
    if src is None:
        src = "y" if own else detect_up_axis(seq.global_orient)
        if src is None:
            raise InputDataError(f"{path}: cannot tell from the body's orientation whether the world is y-up or "
                                 "z-up; give the input's up axis (--input-up for export, --up for eval)")
        if not own:
            notes.append(f"{path.name}: {src}-up world (detected from the body's orientation)")
    if src != "y":
        seq = to_up_axis(seq, src, "y", model or body_arrays_for(seq))
    return seq, notes
