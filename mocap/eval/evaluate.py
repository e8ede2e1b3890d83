"""Evaluate a motion file against a ground-truth file: match frames, pose both bodies, compute the metrics."""

from __future__ import annotations

import os
from dataclasses import replace
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


def to_y_up(seq: BodySequence, body, up: str | None = None) -> tuple[BodySequence, str | None]:
    """``seq`` in mocap's y-up world, and a note when it was turned.

    Its up axis: the file's ``up_axis``; else y for files that name their body (mocap's own) and SPIN/ReFit's
    (camera-free SMPL parameters, y-up by SMPL's convention); else ``up``; else detected from the body's
    orientation (:func:`mocap.io.amass.detect_up_axis`).
    """
    import torch

    from mocap.errors import InputDataError
    from mocap.io.amass import detect_up_axis, rotate_world, world_rotation

    src, how = seq.up_axis, "the file's up_axis"
    if src is None and (seq.surface_model or seq.layout == "spin"):
        src = "y"
    if src is None and up is not None:
        src, how = up, "--up"
    if src is None:
        src, how = detect_up_axis(seq.poses[:, 0]), "detected from the body's orientation"
        if src is None:
            raise InputDataError(f"{seq.path}: cannot tell from the body's orientation whether the world is y-up or "
                                 "z-up; pass --up y|z")
    if src == "y":
        return seq, None
    if seq.trans is None:
        raise InputDataError(f"{seq.path}: a {src}-up file without trans; mocap cannot turn it")
    with torch.no_grad():
        pelvis = body.rest_joints(torch.as_tensor(np.nan_to_num(seq.betas), dtype=body.dtype))[:, 0].double().numpy()
    go, trans = rotate_world(seq.poses[:, 0], seq.trans, pelvis, world_rotation(src, "y"))
    poses = seq.poses.copy()
    poses[:, 0] = go
    return replace(seq, poses=poses, trans=trans), f"{seq.path.name}: {src}-up world ({how}) turned to y-up"


def evaluate_files(result: str | os.PathLike, gt: str | os.PathLike, offset: int = 0, body: str | None = None,
                   gt_body: str | None = None, gender: str | None = None, up: str | None = None,
                   progress: Progress | None = None) -> Metrics:
    """Load both files and their body models (named in the files; ``body`` overrides both, ``gt_body`` the
    ground truth's; ``gender`` both files' genders), bring both to y-up (:func:`to_y_up`, ``up`` for files
    that do not say), and evaluate."""
    from mocap.body.model import load_body

    seqs = [load_sequence(result), load_sequence(gt)]
    if gender is not None:
        seqs = [replace(s, gender=gender) for s in seqs]
    specs = (body or body_spec(seqs[0]), gt_body or body or body_spec(seqs[1]))
    cache: dict = {}

    def model(spec: str, gender: str):
        if (spec, gender) not in cache:
            cache[(spec, gender)] = load_body(spec, gender)
        return cache[(spec, gender)]

    bodies = [model(spec, s.gender) for spec, s in zip(specs, seqs)]
    notes = []
    for i in range(2):
        seqs[i], note = to_y_up(seqs[i], bodies[i], up)
        notes += [note] if note else []
    m = evaluate_sequences(seqs[0], seqs[1], bodies[0], bodies[1], offset, progress=progress)
    return replace(m, notes=(*notes, *m.notes))
