"""Several fitted people against several true people: who is who, each person's errors, identity switches.

Identities are matched once for the whole take by the Hungarian method on the mean 3D distance of the
joints (world frame, metres) over the frames both have; each matched pair is then evaluated like one person
(`evaluate_sequences`). Identity switches are counted per frame: in every frame the fitted and true people
present are matched the same way (pairs more than ``gate`` metres apart are no match), and a switch is a true
person matched to a different fitted person than at their previous matched frame.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from mocap.errors import InputDataError
from mocap.eval.evaluate import _pose, evaluate_sequences
from mocap.eval.loaders import body_spec, load_sequence
from mocap.eval.metrics import Metrics


@dataclass(frozen=True)
class PeopleMetrics:
    pairs: dict[str, str]  # true person -> fitted person
    metrics: dict[str, Metrics]  # per true person matched
    switches: dict[str, int]  # identity switches per true person
    unmatched_fit: tuple[str, ...]  # fitted people matching no true person (false tracks)
    unmatched_truth: tuple[str, ...]  # true people no fitted person matches (missed)

    def summary(self) -> dict:
        return {"pairs": self.pairs, "identity_switches": sum(self.switches.values()),
                "switches": self.switches, "unmatched_fit": list(self.unmatched_fit),
                "unmatched_truth": list(self.unmatched_truth),
                "people": {t: self.metrics[t].summary() for t in self.metrics}}


def people_files(folder: Path, name: str) -> dict[str, Path]:
    """``{id: file}``: ``folder/<id>/smpl.npz`` (a fit's ``output/people``) or ``folder/<id>.npz`` (a synthetic
    session's ``ground_truth``)."""
    found = {p.parent.name: p for p in sorted(folder.glob(f"*/{name}"))} or \
        {p.stem: p for p in sorted(folder.glob("*.npz"))}
    if not found:
        raise InputDataError(f"{folder}: no person files (expected <id>/{name} or <id>.npz)")
    return found


def _joints(seq, body) -> np.ndarray:
    """``(F, 24, 3)`` world joints, NaN where the sequence has no valid frame."""
    out = np.full((seq.num_frames, 24, 3), np.nan)
    idx = np.flatnonzero(seq.valid)
    if len(idx):
        out[idx] = _pose(body, seq, idx, False)[0]
    return out


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(F,)`` mean joint distance of two ``(F, 24, 3)`` joint tracks (NaN where either is missing)."""
    F = min(len(a), len(b))
    return np.linalg.norm(a[:F] - b[:F], axis=-1).mean(-1)


def count_switches(dist: np.ndarray, gate: float) -> np.ndarray:
    """Identity switches per true person from per-frame distances ``(F, N_fit, N_true)`` (NaN: absent)."""
    F, _, T = dist.shape
    last = np.full(T, -1)
    switches = np.zeros(T, int)
    for f in range(F):
        d = np.where(np.isfinite(dist[f]), dist[f], 1e6)
        rows, cols = linear_sum_assignment(d)
        for r, c in zip(rows, cols):
            if d[r, c] > gate:
                continue
            if last[c] >= 0 and last[c] != r:
                switches[c] += 1
            last[c] = r
    return switches


def evaluate_people(result: str | os.PathLike, gt: str | os.PathLike, gate: float = 0.5) -> PeopleMetrics:
    """``result``: a folder of fitted people (``output/people``); ``gt``: a folder of true people
    (a synthetic session's ``ground_truth``). Body models as the files name them."""
    from mocap.body.model import load_body

    fits = {k: load_sequence(p) for k, p in people_files(Path(result), "smpl.npz").items()}
    truths = {k: load_sequence(p) for k, p in people_files(Path(gt), "smpl.npz").items()}
    cache: dict = {}

    def model(seq):
        key = (body_spec(seq), seq.gender)
        if key not in cache:
            cache[key] = load_body(*key)
        return cache[key]

    fj = {k: _joints(s, model(s)) for k, s in fits.items()}
    tj = {k: _joints(s, model(s)) for k, s in truths.items()}
    fk, tk = list(fits), list(truths)
    per_frame = np.stack([np.stack([_distance(fj[a], tj[b]) for b in tk], -1) for a in fk], 1)  # (F, N_fit, N_true)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # people never present together: NaN, no match
        mean = np.nanmean(per_frame, 0)
    rows, cols = linear_sum_assignment(np.where(np.isfinite(mean), mean, 1e6))
    pairs = {tk[c]: fk[r] for r, c in zip(rows, cols) if np.isfinite(mean[r, c]) and mean[r, c] < gate}
    metrics = {t: evaluate_sequences(fits[f], truths[t], model(fits[f]), model(truths[t])) for t, f in pairs.items()}
    switches = dict(zip(tk, count_switches(per_frame, gate).tolist()))
    return PeopleMetrics(pairs, metrics, switches, tuple(f for f in fk if f not in pairs.values()),
                         tuple(t for t in tk if t not in pairs))
