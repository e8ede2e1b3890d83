"""A picture of a body model's template for checking it at a glance: front and side views of the rest
mesh, the 24 joints and the detector keypoints, labelled."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mocap.io.atomic import save_figure


def body_figure(body, out: str | os.PathLike, fmt: str = "blazepose33", betas=None) -> Path:
    """Render ``body`` (a :class:`mocap.body.model.BodyModel`) in its rest pose to ``out`` (PNG).

    Front view: x (the body's left) to the right, y up. Side view: seen from the body's left, z (front)
    to the right. Joints in red with their names, keypoints of ``fmt`` in blue with theirs, the 67 mocap markers in green.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from mocap.body.keypoints import body_keypoints, keypoint_spec, marker_vertex_ids
    from mocap.body.model import JOINT_NAMES, PARENTS

    betas = torch.zeros(1, 10) if betas is None else torch.as_tensor(betas, dtype=torch.float32).reshape(1, -1)
    zero = torch.zeros(1, 3)
    with torch.no_grad():
        res = body.forward(zero, torch.zeros(1, 23, 3), betas, zero)
        spec = keypoint_spec(body, fmt)
        kp = body_keypoints(body, spec, zero, torch.zeros(1, 23, 3), betas, zero)[0].numpy()
    V, J = res.vertices[0].numpy(), res.joints[0].numpy()
    M = V[marker_vertex_ids(body)]
    height = np.ptp(V[:, 1])
    fig, axes = plt.subplots(1, 3, figsize=(18, 9), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    views = ((0, "front (x: body's left →)"), (2, "side, from the left (z: front →)"), (0, "head, front"))
    for i, (ax, (h, title)) in enumerate(zip(axes, views)):
        ax.scatter(V[:, h], V[:, 1], s=0.4 if i < 2 else 2, c="0.6", linewidths=0, rasterized=True)
        for j, p in enumerate(PARENTS):
            if p >= 0:
                ax.plot(J[[p, j], h], J[[p, j], 1], "-", c="darkred", lw=1)
        ax.scatter(M[:, h], M[:, 1], s=8, c="tab:green", marker="o", zorder=3, alpha=0.7)
        ax.scatter(J[:, h], J[:, 1], s=12, c="red", zorder=3)
        used = spec.weights > 0
        ax.scatter(kp[used, h], kp[used, 1], s=10, c="tab:blue", marker="x", zorder=4)
        if i == 2:
            head = J[JOINT_NAMES.index("head")]
            ax.set_xlim(head[0] - 0.13, head[0] + 0.13)
            ax.set_ylim(head[1] - 0.12, head[1] + 0.2)
            for k in np.flatnonzero(used):
                if kp[k, 1] > head[1] - 0.12:
                    ax.annotate(spec.names[k], (kp[k, 0], kp[k, 1]), fontsize=6, color="tab:blue", xytext=(2, 3), textcoords="offset points")
        elif h == 0:
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
                 f"joints (red), {fmt} keypoints used by fitting (blue), 67 markers (green)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, dpi=150)
