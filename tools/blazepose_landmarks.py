"""Where BlazePose puts its landmarks on the bundled body: rendered footage with known poses, detected.

    PYTHONPATH=$PWD python tools/blazepose_landmarks.py --root DIR [--motions arm_raise,turn,mixed] [--seed 7]

Renders (once, into DIR) `mocap synth --render` sessions of the bundled body (4 cameras, 40 frames, 0.4 image
scale) and runs `mocap detect` on them. Then, per BlazePose landmark, the median pixel distance between each
detection and the projection of the true body's point: for the point `mocap.body.keypoints` maps it to now,
for the best mirror-symmetric pair of surface vertices (a left vertex and its mirror image for the right
landmark, scored together), and for the shoulders the joint centre against the shoulder-top vertex. This is
how ``BLAZEPOSE_OPEN_BODY``, the shoulder mapping and the knees' and ankles' places along the shin
(``BLAZEPOSE_OPEN_BODY_SHIN``) were chosen, on motions and a seed other than those
`benchmarks/fitting_rendered.py` scores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from mocap.body.keypoints import body_keypoints
from mocap.body.model import JOINT_NAMES
from mocap.eval.loaders import load_sequence
from mocap.fitting.run import load_inputs


def rendered(root: Path, motion: str, seed: int) -> Path:
    from mocap.detect.stage import detect_session
    from mocap.session import Session
    from mocap.synth.session import SynthConfig, synthesize

    s = root / motion
    if not (s / "ground_truth.npz").is_file():
        synthesize(s, SynthConfig(cameras=4, frames=40, motion=motion, render=True, board_frames=10,
                                  image_scale=0.4, seed=seed))
        (s / "output" / "keypoints2d.h5").rename(s / "output" / "keypoints2d_synthetic.h5")
    if not (s / "output" / "keypoints2d.h5").is_file():
        detect_session(Session.load(s))
    return s


#: Points along the shin scored for the knees and ankles, as fractions of the way from the knee to the ankle.
SHIN = np.round(np.arange(-0.2, 1.21, 0.01), 2)


def distances(session: Path) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray, dict[str, float],
                                      dict[str, np.ndarray]]:
    """Per landmark: median px to every vertex ``(V,)`` and to its current point; the rest template
    ``(V, 3)``; the shoulders' median px to their joints; the knees' and ankles' median px to the points
    along the shin at `SHIN` ``(S,)``."""
    inp, gt = load_inputs(session), load_sequence(session / "ground_truth.npz")
    body, kp, rig, spec = inp.body, inp.keypoints, inp.rig, inp.spec
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=body.dtype)  # noqa: E731
    with torch.no_grad():
        out = body.forward(t(gt.poses[:, 0]), t(gt.poses[:, 1:]), t(gt.betas), t(gt.trans))
        rest = body.forward(t(np.zeros((1, 3))), t(np.zeros((1, 23, 3))), None, t(np.zeros((1, 3))))
    V, J = out.vertices.double().numpy(), out.joints.double().numpy()
    det = kp.keypoints.astype(np.float64)
    with torch.no_grad():
        now = body_keypoints(body, spec, t(gt.poses[:, 0]), t(gt.poses[:, 1:]), t(gt.betas), t(gt.trans)).double().numpy()

    def median_px(k: int, points: np.ndarray) -> np.ndarray:
        """``points`` (F, N, 3) -> (N,) median over frames and views of the distance to landmark k."""
        d = []
        for v, cam in enumerate(kp.cameras):
            ok = det[:, v, k, 2] >= 0.5
            uv = rig[cam].project(points[ok].reshape(-1, 3)).reshape(int(ok.sum()), points.shape[1], 2)
            d.append(np.linalg.norm(uv - det[ok, v, k, None, :2], axis=-1))
        return np.median(np.concatenate(d), 0)

    every, current, joint, shin = {}, {}, {}, {}
    for k, name in enumerate(spec.names):
        if spec.weights[k] > 0:
            every[name], current[name] = median_px(k, V), float(median_px(k, now[:, k:k + 1])[0])
        if name.endswith("_shoulder"):
            joint[name] = float(median_px(k, J[:, [JOINT_NAMES.index(name)]])[0])
        if name.endswith(("_knee", "_ankle")):
            side = name.split("_")[0]
            knee, ankle = J[:, [JOINT_NAMES.index(f"{side}_knee")]], J[:, [JOINT_NAMES.index(f"{side}_ankle")]]
            shin[name] = median_px(k, knee + SHIN[:, None] * (ankle - knee))
    return every, current, rest.vertices[0].double().numpy(), joint, shin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--motions", default="arm_raise,turn,mixed")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    runs = [distances(rendered(args.root, m, args.seed)) for m in args.motions.split(",")]
    template = runs[0][2]
    mirror = cKDTree(template).query(template * [-1, 1, 1])[1]
    print("| landmark | now, px | best vertex pair | px | shoulder joint, px |\n|---|---|---|---|---|")
    for name in runs[0][0]:
        every = np.mean([r[0][name] for r in runs], 0)
        twin = name.replace("left", "\0").replace("right", "left").replace("\0", "right")
        partner = np.mean([r[0][twin] for r in runs], 0)
        best = int(np.argmin(every + partner[mirror]))
        joint = f"{np.mean([r[3][name] for r in runs]):.2f}" if name.endswith("_shoulder") else ""
        print(f"| {name} | {np.mean([r[1][name] for r in runs]):.2f} | {best} / {int(mirror[best])} | {every[best]:.2f} | {joint} |")
    print("\n| landmark | at the joint, px | best point along the shin (knee 0, ankle 1) | px |\n|---|---|---|---|")
    for name in runs[0][4]:
        twin = name.replace("left", "\0").replace("right", "left").replace("\0", "right")
        shin = np.mean([r[4][name] for r in runs], 0)
        best = int(np.argmin(shin + np.mean([r[4][twin] for r in runs], 0)))  # one fraction for both sides
        at = int(np.flatnonzero(SHIN == (0.0 if name.endswith("_knee") else 1.0))[0])
        print(f"| {name} | {shin[at]:.2f} | {SHIN[best]:.2f} | {shin[best]:.2f} |")


if __name__ == "__main__":
    main()
