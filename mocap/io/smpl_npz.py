"""SMPL motion sequences in AMASS's layout: ``output/smpl.npz`` (and the same arrays in HDF5).

File keys (AMASS names, so that AMASS tools read our results):

- ``poses`` ``(F, 72)`` axis-angle, radians: global_orient then SMPL's 23 body joints, in SMPL's joint order.
  SMPL-H files ``(F, 156)`` (AMASS) are read too: their first 66 values are SMPL's first 22 joints; SMPL's two hand
  joints (22, 23) have no SMPL-H counterpart and read as zero.
- ``trans`` ``(F, 3)`` metres, world frame, y up.
- ``betas`` ``(10,)``; ``gender`` (``neutral``/``male``/``female``); ``mocap_framerate`` (frames per second);
  ``surface_model``: the body model the sequence was fitted with (``open_body_neutral``, ``smpl_neutral``...).
- ``up_axis``: ``"y"`` (mocap's world) or ``"z"`` (AMASS's, written by ``mocap export --up z``); this module reads
  y-up files only, :func:`mocap.io.amass.load_motion` turns z-up ones (see :mod:`mocap.io.amass`).
- optional ``meta``: a JSON string (versions, config...); any other array is kept as an extra (per-frame quality...).
- SMPL-H layout (``smplh=True``, AMASS's): ``poses`` ``(F, 156)``, ``betas`` ``(16,)`` (10 then zeros), ``dmpls``
  ``(F, 8)`` zeros; read back as the 72/10 layout (``dmpls`` dropped).

Frames with NaN or infinite values (a frame the fit gave up on) are kept by :func:`load_sequence`, as in the file;
exporters need finite motion, and :func:`hold_invalid_frames` is the policy the CLI applies: each invalid frame holds
the last valid pose (the first valid one before it), so that frame ``i`` still plays at ``i / fps`` in sync with
the videos; a sequence with no valid frame is refused.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mocap.errors import InputDataError
from mocap.io.atomic import atomic_buffer

NUM_JOINTS = 24
NUM_BETAS = 10
GENDERS = ("neutral", "male", "female")
REQUIRED_KEYS = ("poses", "trans", "betas", "gender", "mocap_framerate", "surface_model")
_SMPLH_POSE_VALUES = 156
_SMPLH_BODY_VALUES = 66  # root + 21 body joints, shared by SMPL and SMPL-H
_SMPLH_BETAS = 16
_DMPLS = 8  # AMASS's dynamic soft-tissue coefficients per frame
H5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True, eq=False)
class SmplSequence:
    """One person's SMPL motion.

    Attributes:
        poses: ``(F, 24, 3)`` axis-angle per joint (joint 0 = global_orient), radians, float64.
        trans: ``(F, 3)`` root translation, metres, world frame y up.
        betas: ``(10,)`` shape coefficients.
        gender: ``neutral``, ``male`` or ``female``.
        fps: frames per second.
        surface_model: name of the body model the parameters belong to (``BodyModel.name``).
        extra: other arrays of the file, kept as they are (per-frame quality scores...).
        meta: metadata (versions, config...), stored as the ``meta`` JSON string.
    """

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    gender: str
    fps: float
    surface_model: str
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        poses = np.asarray(self.poses, dtype=np.float64)
        if poses.ndim == 2 and poses.shape[1] in (NUM_JOINTS * 3, _SMPLH_POSE_VALUES):
            poses = _poses_from_flat(poses)
        if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or len(poses) == 0:
            raise InputDataError(f"poses has shape {poses.shape}; expected (F, 72) or (F, 24, 3) with F >= 1")
        trans = np.asarray(self.trans, dtype=np.float64)
        if trans.shape != (len(poses), 3):
            raise InputDataError(f"trans has shape {trans.shape}; expected ({len(poses)}, 3) like poses")
        betas = np.asarray(self.betas, dtype=np.float64)
        if betas.shape != (NUM_BETAS,):
            raise InputDataError(f"betas has shape {betas.shape}; expected ({NUM_BETAS},)")
        if not np.all(np.isfinite(betas)):
            raise InputDataError("betas are not finite")
        if self.gender not in GENDERS:
            raise InputDataError(f"gender {self.gender!r} is not one of {', '.join(GENDERS)}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise InputDataError(f"mocap_framerate {self.fps!r} is not a positive number")
        if not self.surface_model:
            raise InputDataError("surface_model is empty; it must name the body model of the fit")
        reserved = set(REQUIRED_KEYS) | {"meta", "up_axis", "dmpls"}
        if reserved & set(self.extra):
            raise InputDataError(f"extra arrays may not be named {', '.join(sorted(reserved & set(self.extra)))}")
        for name, value in (("poses", poses), ("trans", trans), ("betas", betas), ("fps", float(self.fps))):
            object.__setattr__(self, name, value)

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    @property
    def global_orient(self) -> np.ndarray:
        """``(F, 3)``"""
        return self.poses[:, 0]

    @property
    def body_pose(self) -> np.ndarray:
        """``(F, 23, 3)``"""
        return self.poses[:, 1:]

    def invalid_frames(self) -> np.ndarray:
        """``(F,)`` bool: frames whose pose or translation holds a NaN or an infinity."""
        return ~(np.isfinite(self.poses).all(axis=(1, 2)) & np.isfinite(self.trans).all(axis=1))


def _poses_from_flat(flat: np.ndarray) -> np.ndarray:
    if flat.shape[1] == _SMPLH_POSE_VALUES:
        flat = np.concatenate([flat[:, :_SMPLH_BODY_VALUES], np.zeros((len(flat), NUM_JOINTS * 3 - _SMPLH_BODY_VALUES))], 1)
    return flat.reshape(len(flat), NUM_JOINTS, 3)


def hold_invalid_frames(seq: SmplSequence) -> tuple[SmplSequence, np.ndarray]:
    """Replace every invalid frame by the last valid one (leading invalid frames by the first valid one).

    Returns:
        the filled sequence (``seq`` itself when nothing was invalid) and the ``(F,)`` bool mask of the frames
        that were replaced, for the caller to report.
    Raises:
        InputDataError: no frame is valid.
    """
    invalid = seq.invalid_frames()
    if not invalid.any():
        return seq, invalid
    if invalid.all():
        raise InputDataError(f"all {seq.num_frames} frames hold NaN or infinite values; nothing to export")
    valid_idx = np.flatnonzero(~invalid)
    # For each frame, the index of the last valid frame at or before it (the first valid one for a leading gap).
    source = np.maximum.accumulate(np.where(invalid, -1, np.arange(seq.num_frames)))
    source[source < 0] = valid_idx[0]
    return replace(seq, poses=seq.poses[source], trans=seq.trans[source]), invalid


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` or ``.h5`` file, by name.

    Raises:
        InputDataError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: SMPL sequence not found")
    return _read_h5(path) if path.suffix.lower() in H5_SUFFIXES else _read_npz(path)


def load_sequence(path: str | os.PathLike) -> SmplSequence:
    """Read and check an AMASS-style ``.npz`` (or ``.h5``) sequence. See the module docstring for the keys.

    Raises:
        InputDataError: unreadable file, missing key, wrong shape or value, a z-up file; the message names the file.
    """
    path = Path(path)
    arrays = read_arrays(path)
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise InputDataError(f"{path}: not an SMPL sequence, lacks the keys {', '.join(missing)}")
    up = _as_str(arrays.pop("up_axis")) if "up_axis" in arrays else "y"
    if up != "y":
        raise InputDataError(f"{path}: a {up}-up file (written for AMASS tools); `mocap export {path.name} --fmt npz "
                             "--up y` turns it back to mocap's y-up world")
    return sequence_from_arrays(arrays, path)


def sequence_from_arrays(arrays: dict[str, np.ndarray], path: Path) -> SmplSequence:
    """A `SmplSequence` from a file's arrays (the required keys; the rest become extras); errors name ``path``.

    16 betas whose last 6 are zero (SMPL-H layout) read as 10; ``dmpls`` (SMPL-H layout) is dropped.
    """
    arrays = dict(arrays)
    arrays.pop("dmpls", None)
    try:
        meta = json.loads(_as_str(arrays.pop("meta"))) if "meta" in arrays else {}
        fps = np.asarray(arrays.pop("mocap_framerate"))
        if fps.size != 1:
            raise InputDataError(f"mocap_framerate has shape {fps.shape}; expected one number")
        betas = np.asarray(arrays.pop("betas"))
        if betas.shape == (_SMPLH_BETAS,) and not np.any(betas[NUM_BETAS:]):
            betas = betas[:NUM_BETAS]
        return SmplSequence(
            poses=arrays.pop("poses"), trans=arrays.pop("trans"), betas=betas,
            gender=_as_str(arrays.pop("gender")), fps=float(fps.reshape(())),
            surface_model=_as_str(arrays.pop("surface_model")), extra=arrays, meta=meta)
    except (InputDataError, ValueError, TypeError) as e:
        raise InputDataError(f"{path}: {e}") from None


def save_sequence(path: str | os.PathLike, seq: SmplSequence, smplh: bool = False, up_axis: str = "y") -> None:
    """Write ``seq`` atomically as ``.npz`` or, by suffix, ``.h5``; :func:`load_sequence` reads it back exactly.

    Args:
        smplh: AMASS's SMPL-H layout (module docstring): SMPL's first 22 joints then 90 zero hand values, 16
            betas, zero ``dmpls``. SMPL's own hand joints (22, 23) are dropped.
        up_axis: recorded as ``up_axis``; the caller has already turned ``seq`` into that world
            (:func:`mocap.io.amass.to_up_axis`).
    """
    path = Path(path)
    F = seq.num_frames
    arrays = {"poses": seq.poses.reshape(F, -1), "trans": seq.trans, "betas": seq.betas, "gender": np.array(seq.gender),
              "mocap_framerate": np.array(seq.fps), "surface_model": np.array(seq.surface_model),
              "up_axis": np.array(up_axis), **seq.extra}
    if smplh:
        arrays["poses"] = np.concatenate([arrays["poses"][:, :_SMPLH_BODY_VALUES],
                                          np.zeros((F, _SMPLH_POSE_VALUES - _SMPLH_BODY_VALUES))], 1)
        arrays["betas"] = np.concatenate([seq.betas, np.zeros(_SMPLH_BETAS - NUM_BETAS)])
        arrays["dmpls"] = np.zeros((F, _DMPLS))
    if seq.meta:
        arrays["meta"] = np.array(json.dumps(seq.meta))
    with atomic_buffer(path) as buf:
        if path.suffix.lower() in H5_SUFFIXES:
            _write_h5(buf, arrays)
        else:
            np.savez(buf, **arrays)


def _as_str(value) -> str:
    value = np.asarray(value)
    if value.size != 1 or value.dtype.kind not in "USO":
        raise InputDataError(f"expected a string, found an array of shape {value.shape} and type {value.dtype}")
    value = value.reshape(()).item()
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise InputDataError(f"{path}: not a readable npz (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise InputDataError(f"{path}: holds Python objects (pickles), which are not read for safety; "
                                 "store strings as numpy string arrays") from None
        raise InputDataError(f"{path}: not a readable npz ({e})") from None
    except (OSError, EOFError) as e:
        raise InputDataError(f"{path}: not a readable npz ({e})") from None


def _read_h5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: (f[k].asstr()[()] if f[k].dtype.kind in "SO" else f[k][()]) for k in f
                    if isinstance(f[k], h5py.Dataset)}
    except OSError as e:
        raise InputDataError(f"{path}: not a readable HDF5 file ({e})") from None


def _write_h5(path, arrays: dict[str, np.ndarray]) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            v = np.asarray(v)
            if v.dtype.kind == "U":
                f.create_dataset(k, data=v.item() if v.ndim == 0 else v.astype(object), dtype=h5py.string_dtype())
            else:
                f.create_dataset(k, data=v)
