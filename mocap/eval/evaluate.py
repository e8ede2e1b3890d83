"""Evaluate a motion file against a ground-truth file: match frames, pose both bodies, compute the metrics."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from mocap.eval.loaders import BodySequence, body_spec, load_sequence
from mocap.eval.metrics import MM, Metrics, compute_metrics

Progress = Callable[[int, int], None]


def match_frames(num_pred: int, num_gt: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Prediction frame ``i`` is ground-truth frame ``i + offset``: the overlapping ``(pred, gt)`` indices."""
    start, stop = max(0, -offset), min(num_pred, num_gt - offset)
    pred = np.arange(start, max(start, stop))
    return pred, pred + offset


def _pose(body, seq: BodySequence, idx: np.ndarray, vertices: bool):
    import torch

    dt = body.dtype
    go = torch.as_tensor(seq.poses[idx, 0], dtype=dt)
    bp = torch.as_tensor(seq.poses[idx, 1:], dtype=dt)
    betas = torch.as_tensor(seq.betas[idx], dtype=dt)
    transl = torch.as_tensor(seq.trans[idx] if seq.trans is not None else np.zeros((len(idx), 3)), dtype=dt)
    with torch.no_grad():
        if vertices:
            out = body(go, bp, betas, transl)
            return out.joints.double().numpy(), out.vertices.double().numpy()
        return body.points(go, bp, betas, transl)[0].double().numpy(), None


def evaluate_sequences(pred: BodySequence, gt: BodySequence, pred_body, gt_body, offset: int = 0,
                       chunk: int = 256, progress: Progress | None = None) -> Metrics:
    """Metrics of ``pred`` against ``gt``, posed with their body models (`BodyModel`)."""
    from mocap.body.model import JOINT_NAMES

    notes = []
    pi, gi = match_frames(pred.num_frames, gt.num_frames, offset)
    ok = pred.valid[pi] & gt.valid[gi]
    pi, gi = pi[ok], gi[ok]
    same_body = pred_body.name == gt_body.name and pred_body.num_vertices == gt_body.num_vertices
    if not same_body:
        notes.append(f"PVE skipped: different body models ({pred_body.name} vs {gt_body.name})")
    if pred.trans is None:
        notes.append(f"{pred.path.name} has no translation: no global error; acceleration error pelvis-centred")
    for seq in (pred, gt):
        if seq.layout in ("smplh", "smplx"):
            notes.append(f"{seq.path.name}: {seq.layout.upper()} poses, body joints only (hands ignored)")
    pj, gj, pve = [], [], []
    for s in range(0, len(pi), chunk):
        a, va = _pose(pred_body, pred, pi[s:s + chunk], same_body)
        b, vb = _pose(gt_body, gt, gi[s:s + chunk], same_body)
        pj.append(a)
        gj.append(b)
        if same_body:
            pve.append(np.linalg.norm((va - a[:, :1]) - (vb - b[:, :1]), axis=-1).mean(1) * MM)
        if progress:
            progress(min(s + chunk, len(pi)), len(pi))
    empty = np.zeros((0, len(JOINT_NAMES), 3))
    return compute_metrics(np.concatenate(pj) if pj else empty, np.concatenate(gj) if gj else empty, JOINT_NAMES,
                           gi, gt.num_frames, np.concatenate(pve) if same_body and pve else None,
                           global_positions=pred.trans is not None, notes=tuple(notes))


def evaluate_files(result: str | os.PathLike, gt: str | os.PathLike, offset: int = 0, body: str | None = None,
                   gt_body: str | None = None, progress: Progress | None = None) -> Metrics:
    """Load both files and their body models (named in the files; ``body`` overrides both, ``gt_body`` the
    ground truth's) and evaluate."""
    from mocap.body.model import load_body

    pred_seq, gt_seq = load_sequence(result), load_sequence(gt)
    specs = (body or body_spec(pred_seq), gt_body or body or body_spec(gt_seq))
    cache: dict = {}

    def model(spec: str, gender: str):
        if (spec, gender) not in cache:
            cache[(spec, gender)] = load_body(spec, gender)
        return cache[(spec, gender)]

    return evaluate_sequences(pred_seq, gt_seq, model(specs[0], pred_seq.gender), model(specs[1], gt_seq.gender),
                              offset, progress=progress)
