"""Read body motion from the npz files people evaluate: ours, AMASS, SPIN/ReFit.

All become a `BodySequence` of SMPL's 24 joint rotations. Conversions, each a decision:

- Ours and AMASS-style (``poses``, ``trans``, ``betas``, optional ``gender``, ``mocap_framerate``,
  ``surface_model``): ``poses`` with 72 values per frame are SMPL's 24 joints. With 156 (AMASS, SMPL-H) or
  165 (AMASS, SMPL-X) values only the first 66, the root and 21 body joints, are read: SMPL-H's and SMPL-X's
  first 22 joints are SMPL's first 22, and their hand and face joints are ignored. SMPL's joints 22 and 23
  (left_hand, right_hand) are set to the identity; this changes no joint position (those two rotations
  only move hand vertices), only hand vertices, so PVE against a file with real SMPL hand rotations sees
  the difference. AMASS's 16 SMPL-H betas are cut to the first 10: SMPL-H's shape space is not SMPL's,
  so against AMASS load the model the file names (``--body``), or read the errors as approximate.
- SPIN/ReFit-style (``pose`` (F, 72) or rotation matrices (F, 24, 3, 3), ``shape`` (F, 10), optional
  ``trans`` (F, 3)): SMPL parameters; without ``trans`` there is no global position.

Up axis: a file's ``up_axis`` key (``y`` or ``z``) when it has one, else unknown (``None``): `mocap.eval.evaluate`
takes mocap's and SPIN's files as y-up and detects or asks for the others' (:mod:`mocap.io.amass`).

Frames whose values are not finite (a result that left a frame empty) are kept as NaN and skipped by the
evaluation.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.errors import InputDataError

NUM_JOINTS = 24
#: How other files people might pass begin, to name them instead of failing to unzip them.
_SIGNATURES = ((b"PathFileType", "TRC (OpenSim/Pose2Sim markers)"), (b"HIERARCHY", "BVH"), (b"\x89HDF", "HDF5"),
               (b"Kaydara FBX", "FBX"), (b"glTF", "GLB"), (b"\x93NUMPY", "single-array .npy"), (b"{", "JSON"),
               (b"\x80", "pickle"))
BODY_VALUES = 66  # root + 21 body joints: shared by SMPL, SMPL-H and SMPL-X


@dataclass(frozen=True)
class BodySequence:
    """SMPL parameters of F frames."""

    poses: np.ndarray  # (F, 24, 3) axis-angle; NaN for frames without a result
    trans: np.ndarray | None  # (F, 3) metres, or None when the file has no global position
    betas: np.ndarray  # (F, 10)
    gender: str
    surface_model: str | None  # the body model named by the file
    fps: float | None
    layout: str  # "smpl", "smplh", "smplx" or "spin": where the values came from
    path: Path
    up_axis: str | None = None  # "y" or "z" when the file says; None when it does not

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    @property
    def valid(self) -> np.ndarray:
        """(F,) frames with finite parameters."""
        ok = np.isfinite(self.poses).all((1, 2)) & np.isfinite(self.betas).all(1)
        return ok & np.isfinite(self.trans).all(1) if self.trans is not None else ok


def _str(z, key: str) -> str | None:
    if key not in z.files:
        return None
    v = z[key]
    return str(v.item() if v.ndim == 0 else v.reshape(-1)[0])


def _betas(raw: np.ndarray, F: int, path: Path) -> np.ndarray:
    b = np.asarray(raw, dtype=np.float64)
    if b.ndim == 1:
        b = np.broadcast_to(b, (F, b.shape[0]))
    if b.ndim != 2 or b.shape[0] != F:
        raise InputDataError(f"{path}: betas have shape {raw.shape}, expected (10,), (16,) or ({F}, N)")
    out = np.zeros((F, 10))
    n = min(10, b.shape[1])
    out[:, :n] = b[:, :n]
    return out


def _rotmat_to_axis_angle(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    flat = R.reshape(-1, 3, 3)
    out = np.full((len(flat), 3), np.nan)
    ok = np.isfinite(flat).all((1, 2))
    out[ok] = Rotation.from_matrix(flat[ok]).as_rotvec()
    return out.reshape(R.shape[:-2] + (3,))


def load_sequence(path: str | os.PathLike) -> BodySequence:
    """Read an npz of ours, AMASS or SPIN/ReFit (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    with open(path, "rb") as f:
        head = f.read(64)
    if not head.startswith(b"PK"):
        kind = next((name for sig, name in _SIGNATURES if head.lstrip().startswith(sig)), None)
        if kind is None and len(head) > 2 and head[1] == 0x50:  # C3D: byte 2 of the header block is 0x50
            kind = "C3D"
        raise InputDataError(f"{path}: {'a ' + kind + ' file' if kind else 'not an npz file'}; expected an npz of "
                             "SMPL parameters (ours, AMASS-style or SPIN/ReFit-style)")
    try:
        z = np.load(path, allow_pickle=False)
        z.files  # noqa: B018  -- reading the index finds a truncated archive now, not at the first array
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputDataError(f"{path}: truncated or damaged npz ({e})") from None
    with z:
        if "poses" in z.files:
            raw = np.asarray(z["poses"], dtype=np.float64)
            if raw.ndim != 2 or raw.shape[1] not in (72, 156, 165):
                raise InputDataError(f"{path}: poses have shape {raw.shape}, expected (F, 72) SMPL, (F, 156) SMPL-H "
                                     "or (F, 165) SMPL-X")
            F = len(raw)
            layout = {72: "smpl", 156: "smplh", 165: "smplx"}[raw.shape[1]]
            poses = np.zeros((F, NUM_JOINTS, 3))
            n = 72 if layout == "smpl" else BODY_VALUES
            poses.reshape(F, -1)[:, :n] = raw[:, :n]
            poses[~np.isfinite(raw).all(1)] = np.nan
            if "trans" not in z.files or "betas" not in z.files:
                raise InputDataError(f"{path}: AMASS-style file lacks 'trans' or 'betas'")
            trans, betas = np.asarray(z["trans"], dtype=np.float64), z["betas"]
            rate = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in z.files), None)  # AMASS spells both
            fps = float(z[rate]) if rate else None
        elif "pose" in z.files:
            raw = np.asarray(z["pose"], dtype=np.float64)
            if raw.ndim == 4 and raw.shape[1:] == (NUM_JOINTS, 3, 3):
                poses = _rotmat_to_axis_angle(raw)
            elif raw.ndim == 2 and raw.shape[1] == 72:
                poses = raw.reshape(-1, NUM_JOINTS, 3)
            else:
                raise InputDataError(f"{path}: pose has shape {raw.shape}, expected (F, 72) or (F, 24, 3, 3)")
            F, layout, fps = len(poses), "spin", None
            if "shape" not in z.files:
                raise InputDataError(f"{path}: SPIN/ReFit-style file lacks 'shape'")
            betas = z["shape"]
            trans = np.asarray(z["trans"], dtype=np.float64) if "trans" in z.files else None
        else:
            raise InputDataError(f"{path}: neither AMASS-style ('poses', 'trans', 'betas') nor SPIN/ReFit-style "
                                 f"('pose', 'shape') keys; found {', '.join(z.files)}")
        if trans is not None and trans.shape != (F, 3):
            raise InputDataError(f"{path}: trans has shape {trans.shape}, expected ({F}, 3)")
        up = _str(z, "up_axis")
        if up not in (None, "y", "z"):
            raise InputDataError(f"{path}: up_axis {up!r} is not y or z")
        return BodySequence(poses, trans, _betas(betas, F, path), (_str(z, "gender") or "neutral").lower(),
                            _str(z, "surface_model"), fps, layout, path, up)


def body_spec(seq: BodySequence) -> str:
    """The `load_body` spec of the model a file names: ``open`` for ours, ``smpl`` for SMPL and its
    relatives (SPIN/ReFit files name none and are SMPL)."""
    name = (seq.surface_model or "").strip()
    if seq.layout == "spin" and not name:
        return "smpl"
    if name.lower() in ("open", "open_body_neutral"):
        return "open"
    if name.lower().replace("-", "").replace("+", "").startswith("smpl"):
        return "smpl"
    if not name:
        raise InputDataError(f"{seq.path}: names no body model (surface_model); pass --body open|smpl|PATH")
    raise InputDataError(f"{seq.path}: unknown body model {name!r}; pass --body open|smpl|PATH")
