"""A picture of a body model's template for checking it at a glance: front and side views of the rest
mesh, the 24 joints and the detector keypoints, labelled."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.io.atomic import atomic_path


def body_figure(body, out: str | os.PathLike, fmt: str = "blazepose33", betas=None) -> Path:
    """Render ``body`` (a :class:`mocap.body.model.BodyModel`) in its rest pose to ``out`` (PNG).

    Front view: x (the body's left) to the right, y up. Side view: seen from the body's left, z (front)
    to the right. Joints in red with their names, keypoints of ``fmt`` in blue with theirs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from mocap.body.keypoints import body_keypoints, keypoint_spec
    from mocap.body.model import JOINT_NAMES, PARENTS

    betas = torch.zeros(1, 10) if betas is None else torch.as_tensor(betas, dtype=torch.float32).reshape(1, -1)
    zero = torch.zeros(1, 3)
    with torch.no_grad():
        res = body.forward(zero, torch.zeros(1, 23, 3), betas, zero)
        spec = keypoint_spec(body, fmt)
        kp = body_keypoints(body, spec, zero, torch.zeros(1, 23, 3), betas, zero)[0].numpy()
    V, J = res.vertices[0].numpy(), res.joints[0].numpy()
    height = np.ptp(V[:, 1])
    fig, axes = plt.subplots(1, 2, figsize=(16, 9), gridspec_kw={"width_ratios": [2.2, 1]})
    for ax, (h, title) in zip(axes, ((0, "front (x: body's left →)"), (2, "side, from the left (z: front →)"))):
        ax.scatter(V[:, h], V[:, 1], s=0.3, c="0.75", linewidths=0, rasterized=True)
        for j, p in enumerate(PARENTS):
            if p >= 0:
                ax.plot(J[[p, j], h], J[[p, j], 1], "-", c="darkred", lw=1)
        ax.scatter(J[:, h], J[:, 1], s=12, c="red", zorder=3)
        used = spec.weights > 0
        ax.scatter(kp[used, h], kp[used, 1], s=10, c="tab:blue", marker="x", zorder=4)
        if h == 0:
            for j, name in enumerate(JOINT_NAMES):
                ax.annotate(name, (J[j, 0], J[j, 1]), fontsize=5, color="darkred", xytext=(2, -6), textcoords="offset points")
            for k in np.flatnonzero(used):
                ax.annotate(spec.names[k], (kp[k, 0], kp[k, 1]), fontsize=4.5, color="tab:blue", xytext=(2, 3), textcoords="offset points")
        else:
            for j, name in enumerate(JOINT_NAMES):
                if not name.startswith("right"):
                    ax.annotate(name, (J[j, 2], J[j, 1]), fontsize=5, color="darkred", xytext=(3, -2), textcoords="offset points")
        ax.axhline(V[:, 1].min(), c="0.5", lw=0.5, ls="--")
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(lw=0.3, alpha=0.5)
    fig.suptitle(f"{body.name}: rest pose, stature {height:.3f} m, {body.num_vertices} vertices; "
                 f"joints (red) and {fmt} keypoints used by fitting (blue)", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=150)
    plt.close(fig)
    return out
