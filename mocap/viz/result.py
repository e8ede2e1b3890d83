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
    """The body model the sequence was fitted with: session.yaml's ``body`` when it is that model (a custom SMPL
    path cannot be recovered from a name), else the one its ``surface_model`` names."""
    from mocap.io.export import body_for

    try:
        return body_for(result, session_body)
    except InputDataError:
        return body_for(result)


def body_vertices(body, result: SmplSequence, frames=None, batch: int = 64) -> np.ndarray:
    """World vertices ``(F', V, 3)`` of the ``frames`` (all by default); NaN for empty frames."""
    import torch

    idx = np.arange(result.num_frames) if frames is None else np.asarray(frames)
    out = np.full((len(idx), body.num_vertices, 3), np.nan, dtype=np.float32)
    ok = valid_frames(result)[idx]
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


def keypoints_world(body, result: SmplSequence, fmt: str, frames=None) -> np.ndarray:
    """World positions ``(F', K, 3)`` of the detector format's keypoints on the fitted body; NaN for empty frames."""
    import torch

    from mocap.body.keypoints import body_keypoints, keypoint_spec

    idx = np.arange(result.num_frames) if frames is None else np.asarray(frames)
    spec = keypoint_spec(body, fmt)
    out = np.full((len(idx), spec.num_keypoints, 3), np.nan, dtype=np.float32)
    ok = valid_frames(result)[idx]
    sel = idx[ok]
    if len(sel):
        p = torch.as_tensor(result.poses[sel], dtype=body.dtype)
        betas = torch.as_tensor(result.betas, dtype=body.dtype)[None].expand(len(sel), -1)
        with torch.no_grad():
            out[ok] = body_keypoints(body, spec, p[:, 0], p[:, 1:], betas,
                                     torch.as_tensor(result.trans[sel], dtype=body.dtype)).numpy()
    return out
