"""Body model files as numpy arrays, without torch: finding them, reading them, and the shaped rest pose.

The exporters (BVH, GLB, FBX) need only the subject's rest pose (joints, mesh, skin weights), which is linear in
betas; computing it here keeps torch and smplx (about 2 s of CPU at start-up) out of `mocap export`. The rest
pose is computed in float64 from the file's values rounded to float32 (what the torch layer,
:class:`mocap.body.model.BodyModel`, holds), so the two differ by float32 rounding of their sums (under 0.2 um).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap.body.skeleton import NUM_BETAS
from mocap.errors import InputDataError, MissingDependencyError

ASSETS = Path(__file__).parent / "assets"
OPEN_BODY_FILE = ASSETS / "open_body_neutral.npz"
SMPL_KEYS = ("v_template", "f", "J_regressor", "weights", "shapedirs", "posedirs", "kintree_table")


@dataclass(frozen=True, eq=False)
class BodyArrays:
    """A body model file's arrays and the names results know it by.

    Attributes:
        data: SMPL's keys (``SMPL_KEYS``) as numpy arrays: ``v_template`` ``(V, 3)``, ``f`` ``(T, 3)``,
            ``J_regressor`` ``(24, V)``, ``weights`` ``(V, 24)``, ``shapedirs`` ``(V, 3, >=10)``...
        name, topology, gender: as :class:`mocap.body.model.BodyModel`'s.
    """

    data: dict
    name: str
    topology: str
    gender: str = "neutral"

    def shaped(self, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(10,)`` betas -> rest joints ``(24, 3)`` and rest vertices ``(V, 3)``, float64."""
        v_template, shapedirs, J_reg = (self._f32(k) for k in ("v_template", "shapedirs", "J_regressor"))
        b = self._f32_of(betas).reshape(NUM_BETAS)
        vertices = v_template + shapedirs[:, :, :NUM_BETAS] @ b
        return J_reg @ vertices, vertices

    def _f32(self, key: str) -> np.ndarray:
        return self._f32_of(self.data[key])

    @staticmethod
    def _f32_of(values) -> np.ndarray:
        """float64 copy of the float32 rounding, the values the torch layer computes with."""
        return np.asarray(values, dtype=np.float32).astype(np.float64)

    @property
    def weights(self) -> np.ndarray:
        """``(V, 24)`` skinning weights (float32 values, as the torch layer holds them)."""
        return self._f32("weights")

    @property
    def faces(self) -> np.ndarray:
        return np.asarray(self.data["f"], dtype=np.int64)


def load_body_arrays(spec: str | os.PathLike = "open", gender: str = "neutral") -> BodyArrays:
    """The arrays of the body model ``spec`` names (see :func:`mocap.body.model.load_body`)."""
    if gender not in ("neutral", "male", "female"):
        raise InputDataError(f"unknown gender {gender!r}; use neutral, male or female")
    spec = str(spec)
    if spec in ("open", "open_body_neutral"):
        if gender != "neutral":
            raise InputDataError("the bundled body is gender-neutral; use --gender neutral or your own SMPL files")
        if not OPEN_BODY_FILE.is_file():
            raise MissingDependencyError(f"{OPEN_BODY_FILE}: bundled body asset missing; rebuild it with `python tools/build_open_body.py`")
        return checked(BodyArrays(load_arrays(OPEN_BODY_FILE), "open_body_neutral", "open", gender))
    if spec.startswith("smpl"):
        env = os.environ.get("MOCAP_SMPL_DIR")
        if not env:
            raise MissingDependencyError(
                "SMPL files are licensed and not bundled: download SMPL from https://smpl.is.tue.mpg.de, "
                "then set MOCAP_SMPL_DIR to the folder holding SMPL_NEUTRAL.pkl (or pass its path)")
        spec = env
    path = Path(spec).expanduser()
    file = _find_smpl_file(path, gender) if path.is_dir() else path
    data = load_arrays(file)
    topology = "smpl" if np.asarray(data.get("v_template", np.zeros((0, 3)))).shape[0] == 6890 else "custom"
    return checked(BodyArrays(data, f"smpl_{gender}" if topology == "smpl" else file.stem, topology, gender))


def checked(body: BodyArrays) -> BodyArrays:
    missing = [k for k in SMPL_KEYS if k not in body.data]
    if missing:
        raise InputDataError(f"body model {body.name!r} lacks the keys {', '.join(missing)}")
    return body


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """A ``.npz`` or SMPL ``.pkl`` body file as plain numpy arrays."""
    if not path.is_file():
        raise InputDataError(f"{path}: body model file not found")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise InputDataError(f"{path}: not a readable SMPL-format npz ({e})") from None
    if path.suffix == ".pkl":
        from mocap.body.smpl_pickle import load_smpl_pickle

        return load_smpl_pickle(path)
    raise InputDataError(f"{path}: body model files must be .pkl or .npz")


def _find_smpl_file(folder: Path, gender: str) -> Path:
    stems = [f"SMPL_{gender.upper()}", f"basicmodel_{gender[0]}_lbs_10_207_0_v1.1.0", f"basicModel_{gender[0]}_lbs_10_207_0_v1.0.0"]
    if gender == "neutral":
        stems.append("basicmodel_neutral_lbs_10_207_0_v1.1.0")
    for base in (folder, folder / "smpl"):
        for stem in stems:
            for ext in (".pkl", ".npz"):
                if (base / f"{stem}{ext}").is_file():
                    return base / f"{stem}{ext}"
    raise InputDataError(f"{folder}: no SMPL model file for gender {gender!r} (looked for SMPL_{gender.upper()}.pkl/.npz)")
