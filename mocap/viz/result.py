"""A fitted sequence (``output/smpl.npz``) and its body model, as the viewers need them.

Sequences are :class:`mocap.io.smpl_npz.SmplSequence`; `mocap run` stores its metadata as a ``metadata`` JSON
string, which :func:`load_result` moves into ``meta``. Per-view quality arrays stay in ``extra``
(``reprojection_error_px`` (F, V), ``views_used`` (F, V), ``camera_names`` (V,)).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from mocap.errors import InputDataError
from mocap.io.smpl_npz import SmplSequence, load_sequence


def load_result(path: str | os.PathLike) -> SmplSequence:
    """Read a fitted sequence; errors name the file and what it lacks."""
    seq = load_sequence(path)
    if seq.meta or "metadata" not in seq.extra:
        return seq
    extra = dict(seq.extra)
    raw = np.asarray(extra.pop("metadata"))
    try:
        meta = json.loads(str(raw.reshape(-1)[0]))
    except ValueError:
        raise InputDataError(f"{path}: 'metadata' is not valid JSON") from None
    return dataclasses.replace(seq, extra=extra, meta=meta)


def valid_frames(seq: SmplSequence) -> np.ndarray:
    """(F,) frames with a finite pose and translation (empty frames are NaN)."""
    return ~seq.invalid_frames()


def view_names(seq: SmplSequence) -> tuple[str, ...] | None:
    """The views of the per-view quality arrays, when the fit stored them."""
    names = seq.extra.get("camera_names")
    return tuple(str(c) for c in np.atleast_1d(names)) if names is not None else None


def body_for_result(result: SmplSequence, session_body: str = "open"):
    """The body model file (:class:`mocap.body.arrays.BodyArrays`) the sequence was fitted with: session.yaml's
    ``body`` when it is that model (a custom SMPL path cannot be recovered from a name), else the one its
    ``surface_model`` names."""
    from mocap.io.export import body_arrays_for

    try:
        return body_arrays_for(result, session_body)
    except InputDataError:
        return body_arrays_for(result)


def _posed(body, result: SmplSequence, frames, vertex_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which of ``frames`` (all by default) are fitted ``(F',)``, and their joints and ``vertex_ids``' vertices."""
    from mocap.body.posed import pose_body

    idx = np.arange(result.num_frames) if frames is None else np.asarray(frames)
    ok = valid_frames(result)[idx]
    sel = idx[ok]
    joints, verts = pose_body(body, result.poses[sel], result.betas, result.trans[sel], vertex_ids)
    return ok, joints, verts


def body_vertices(body, result: SmplSequence, vertex_ids: np.ndarray, frames=None) -> np.ndarray:
    """World positions ``(F', K, 3)`` of the vertices ``vertex_ids`` at ``frames`` (all by default); NaN for
    empty frames. ``body`` is the sequence's :class:`mocap.body.arrays.BodyArrays`."""
    ok, _, verts = _posed(body, result, frames, vertex_ids)
    out = np.full((len(ok), len(vertex_ids), 3), np.nan, dtype=np.float32)
    out[ok] = verts
    return out


def keypoints_world(body, result: SmplSequence, fmt: str, frames=None) -> np.ndarray:
    """World positions ``(F', K, 3)`` of the detector format's keypoints on the fitted body; NaN for empty frames."""
    from mocap.body.keypoints import keypoint_spec
    from mocap.body.posed import keypoints_of

    spec = keypoint_spec(body, fmt)
    ok, joints, verts = _posed(body, result, frames, spec.vertex_index[spec.joint_index < 0])
    out = np.full((len(ok), spec.num_keypoints, 3), np.nan, dtype=np.float32)
    out[ok] = keypoints_of(spec, joints, verts)
    return out
