"""Accuracy of a body motion against ground truth, in the field's usual metrics.

Inputs are joint positions ``(F, J, 3)`` (and optionally vertices ``(F, V, 3)``) in metres of the frames
to compare, already matched; results are in millimetres:

- MPJPE: mean joint error after subtracting each body's pelvis (joint 0);
- PA-MPJPE: mean joint error after the similarity transform (rotation, translation, scale) that best
  aligns the predicted joints of that frame to the true ones (Umeyama's closed form);
- PVE: mean vertex error after pelvis alignment (only meaningful for the same body model);
- global MPJPE: mean joint error without any alignment (world frame);
- acceleration error: mean over joints of ``|a_pred - a_true|`` with ``a = x[t-1] - 2 x[t] + x[t+1]`` on
  world joint positions, in mm/frame^2, over triplets of consecutive evaluated frames (the root's jitter
  counts, unlike the pelvis-centred variant of VIBE);
- per-joint MPJPE (pelvis-aligned).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MM = 1000.0


def similarity_align(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``X``, ``Y`` (*, N, 3) -> ``X`` moved by the per-batch similarity (scale, rotation, translation) that
    minimises its squared distance to ``Y`` (Umeyama 1991; reflections excluded). Written with numpy's SVD
    because scipy's `Rotation.align_vectors` fits no scale and is not batched."""
    mx, my = X.mean(-2, keepdims=True), Y.mean(-2, keepdims=True)
    Xc, Yc = X - mx, Y - my
    U, S, Vt = np.linalg.svd(np.swapaxes(Xc, -1, -2) @ Yc)  # Xc^T Yc = U S Vt
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones(S.shape)
    D[..., -1] = d
    R = (U * D[..., None, :]) @ Vt  # maps row vectors: x -> x @ R
    var = (Xc * Xc).sum((-1, -2))
    scale = (S * D).sum(-1) / np.where(var > 0, var, 1.0)
    return scale[..., None, None] * Xc @ R + my


def _err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


@dataclass(frozen=True)
class Metrics:
    """Summary in millimetres (``frames_evaluated`` is a share, 0-1) and per-frame curves."""

    mpjpe: float
    pa_mpjpe: float
    pve: float | None
    global_mpjpe: float | None
    accel_error: float | None
    per_joint: dict[str, float]
    frames_evaluated: float
    frames: np.ndarray  # (E,) indices of evaluated frames, in the ground truth's numbering
    mpjpe_per_frame: np.ndarray  # (E,) mm
    pa_mpjpe_per_frame: np.ndarray  # (E,) mm
    global_per_frame: np.ndarray | None  # (E,) mm
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict:
        """The numbers of ``--json``: exactly the documented keys."""
        return {"mpjpe": self.mpjpe, "pa_mpjpe": self.pa_mpjpe, "pve": self.pve, "global_mpjpe": self.global_mpjpe,
                "accel_error": self.accel_error, "per_joint": dict(self.per_joint),
                "frames_evaluated": self.frames_evaluated}


def compute_metrics(pred_joints: np.ndarray, gt_joints: np.ndarray, joint_names: tuple[str, ...],
                    frames: np.ndarray, total_frames: int, pve_per_frame: np.ndarray | None = None,
                    global_positions: bool = True, notes: tuple[str, ...] = ()) -> Metrics:
    """Metrics of ``pred_joints`` against ``gt_joints`` (E, J, 3) metres, at ground-truth frame indices
    ``frames`` (E,) out of ``total_frames``. ``pve_per_frame`` (E,) mm when vertices were compared;
    ``global_positions`` False when the prediction has no world position (no global error then)."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return Metrics(float("nan"), float("nan"), None, None, None, {n: float("nan") for n in joint_names}, 0.0,
                       frames, np.zeros(0), np.zeros(0), None, notes + ("no frame to evaluate",))
    p_rel = pred_joints - pred_joints[:, :1]
    g_rel = gt_joints - gt_joints[:, :1]
    rel_err = _err(p_rel, g_rel) * MM  # (E, J)
    pa_err = _err(similarity_align(pred_joints, gt_joints), gt_joints) * MM
    glob = _err(pred_joints, gt_joints) * MM if global_positions else None
    # Triplets of consecutive evaluated frames.
    mid = np.flatnonzero((frames[1:-1] - frames[:-2] == 1) & (frames[2:] - frames[1:-1] == 1)) + 1
    accel = None
    if len(mid):
        src_p = pred_joints if global_positions else p_rel
        src_g = gt_joints if global_positions else g_rel
        acc_p = src_p[mid - 1] - 2 * src_p[mid] + src_p[mid + 1]
        acc_g = src_g[mid - 1] - 2 * src_g[mid] + src_g[mid + 1]
        accel = float(_err(acc_p, acc_g).mean() * MM)
    return Metrics(
        mpjpe=float(rel_err.mean()), pa_mpjpe=float(pa_err.mean()),
        pve=None if pve_per_frame is None else float(np.mean(pve_per_frame)),
        global_mpjpe=None if glob is None else float(glob.mean()), accel_error=accel,
        per_joint={n: float(v) for n, v in zip(joint_names, rel_err.mean(0))},
        frames_evaluated=len(frames) / total_frames, frames=frames, mpjpe_per_frame=rel_err.mean(1),
        pa_mpjpe_per_frame=pa_err.mean(1), global_per_frame=None if glob is None else glob.mean(1), notes=notes)
