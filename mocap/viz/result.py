"""A fitted sequence (``output/smpl.npz``) and its body model, as the viewers need them.

``load_result`` goes through :mod:`mocap.io.smpl_npz` (the export stage's loader) when it provides
``load_sequence``; otherwise it reads the AMASS-style keys directly. Metadata is the JSON string stored as
``meta`` or ``metadata``, whichever the writer used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap.errors import InputDataError

_REQUIRED = ("poses", "trans", "betas", "mocap_framerate", "surface_model")


@dataclass(frozen=True, eq=False)
class FitResult:
    """F frames of one body: ``poses`` (F, 24, 3) axis-angle, ``trans`` (F, 3) m, ``betas`` (10,)."""

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    gender: str
    fps: float
    surface_model: str
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    @property
    def valid(self) -> np.ndarray:
        """(F,) frames with a finite pose and translation (empty frames are NaN)."""
        return np.isfinite(self.poses).all((1, 2)) & np.isfinite(self.trans).all(1)

    @property
    def cameras(self) -> tuple[str, ...] | None:
        """The views of the per-view quality arrays, when the fit stored them."""
        names = self.extra.get("camera_names")
        return tuple(str(c) for c in np.atleast_1d(names)) if names is not None else None


def _string(v) -> str:
    v = np.asarray(v)
    return str(v.reshape(-1)[0] if v.ndim else v.item())


def load_result(path: str | os.PathLike) -> FitResult:
    """Read a fitted sequence; errors name the file and what it lacks."""
    path = Path(path)
    try:
        from mocap.io.smpl_npz import load_sequence
    except ImportError:
        load_sequence = None
    if load_sequence is not None:
        seq = load_sequence(path)
        extra = dict(seq.extra)
        meta = dict(seq.meta) or _decode_meta(extra.pop("metadata", None))
        return FitResult(seq.poses, seq.trans, seq.betas, seq.gender, seq.fps, seq.surface_model, extra, meta)
    if not path.is_file():
        raise InputDataError(f"{path}: fitted sequence not found (run `mocap run` first)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputDataError(f"{path}: not a readable npz ({e})") from None
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise InputDataError(f"{path}: not a fitted sequence, lacks {', '.join(missing)}")
    poses = np.asarray(data.pop("poses"), dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 72:
        raise InputDataError(f"{path}: poses have shape {poses.shape}, expected (F, 72)")
    meta = _decode_meta(data.pop("meta", data.pop("metadata", None)))
    return FitResult(poses.reshape(-1, 24, 3), np.asarray(data.pop("trans"), dtype=np.float64),
                     np.asarray(data.pop("betas"), dtype=np.float64).reshape(-1)[:10],
                     _string(data.pop("gender", "neutral")), float(data.pop("mocap_framerate")),
                     _string(data.pop("surface_model")), data, meta)


def _decode_meta(raw) -> dict:
    if raw is None:
        return {}
    try:
        return json.loads(_string(raw))
    except ValueError:
        return {}


def body_for_result(result: FitResult, session_body: str = "open"):
    """The body model the sequence was fitted with, by the name stored in it.

    ``session_body`` (session.yaml's ``body``) is tried first, since a custom SMPL path cannot be recovered from
    a name; then the bundled body and ``$MOCAP_SMPL_DIR``.
    """
    from mocap.body.model import load_body

    tried = []
    for spec in dict.fromkeys((session_body, "open", "smpl")):
        try:
            body = load_body(spec, result.gender)
        except Exception as e:  # noqa: BLE001 - every candidate may fail; the message lists them all
            tried.append(f"{spec}: {e}")
            continue
        if body.name == result.surface_model:
            return body
        tried.append(f"{spec}: is {body.name}")
    raise InputDataError(f"the sequence was fitted with body model {result.surface_model!r}, which could not be "
                         f"loaded ({'; '.join(tried)}); set body in session.yaml to its files")


def body_vertices(body, result: FitResult, frames=None, batch: int = 64) -> np.ndarray:
    """World vertices ``(F', V, 3)`` of the ``frames`` (all by default); NaN for empty frames."""
    import torch

    idx = np.arange(result.num_frames) if frames is None else np.asarray(frames)
    out = np.full((len(idx), body.num_vertices, 3), np.nan, dtype=np.float32)
    ok = result.valid[idx]
    sel = idx[ok]
    betas = torch.as_tensor(result.betas, dtype=body.dtype)[None]
    pieces = []
    with torch.no_grad():
        for s in range(0, len(sel), batch):
            b = sel[s:s + batch]
            p = torch.as_tensor(result.poses[b], dtype=body.dtype)
            res = body.forward(p[:, 0], p[:, 1:], betas.expand(len(b), -1), torch.as_tensor(result.trans[b], dtype=body.dtype))
            pieces.append(res.vertices.numpy())
    if pieces:
        out[ok] = np.concatenate(pieces)
    return out


def keypoints_world(body, result: FitResult, fmt: str, frames=None) -> np.ndarray:
    """World positions ``(F', K, 3)`` of the detector format's keypoints on the fitted body; NaN for empty frames."""
    import torch

    from mocap.body.keypoints import body_keypoints, keypoint_spec

    idx = np.arange(result.num_frames) if frames is None else np.asarray(frames)
    spec = keypoint_spec(body, fmt)
    out = np.full((len(idx), spec.num_keypoints, 3), np.nan, dtype=np.float32)
    ok = result.valid[idx]
    sel = idx[ok]
    if len(sel):
        p = torch.as_tensor(result.poses[sel], dtype=body.dtype)
        betas = torch.as_tensor(result.betas, dtype=body.dtype)[None].expand(len(sel), -1)
        with torch.no_grad():
            out[ok] = body_keypoints(body, spec, p[:, 0], p[:, 1:], betas,
                                     torch.as_tensor(result.trans[sel], dtype=body.dtype)).numpy()
    return out
