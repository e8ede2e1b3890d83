"""Real footage: per-view reprojection error and leave-one-view-out (LOVO) error, px, per view and per keypoint.

    python benchmarks/real_lovo.py [--sample ../shared/data/pose2sim_demo_single] [--session OUT] [--combine average]

Builds a session folder (videos linked from the sample, Qualisys calibration imported), detects BlazePose
keypoints unless the session already holds them, fits all views (`mocap run`), then for each camera fits the
other three and measures the 2D distance of the projected body to the held-out camera's own detections
(confidence >= 0.5), and how much of that is one shift of the held-out view's whole image (its mean residual,
`LeaveOneViewOut.offsets`). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def prepare(sample: Path, root: Path) -> None:
    from mocap.calib.convert import import_rig
    from mocap.io.calibration_toml import save_rig

    (root / "videos").mkdir(parents=True, exist_ok=True)
    for video in sorted((sample / "videos").iterdir()):
        dest = root / "videos" / video.name
        if not dest.exists():
            dest.symlink_to(video.resolve())
    if not (root / "calibration.toml").is_file():
        qca = sample / "calibration" / "Calib.qca.txt"
        save_rig(import_rig(qca, "qualisys"), root / "calibration.toml", {"source": f"Qualisys {qca}"})
    if not (root / "output" / "keypoints2d.h5").is_file():
        from mocap.detect.stage import detect_session
        from mocap.session import Session

        t0 = time.perf_counter()
        detect_session(Session.load(root))
        print(f"detection: {time.perf_counter() - t0:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=Path, default=REPO.parent / "shared" / "data" / "pose2sim_demo_single")
    ap.add_argument("--session", type=Path, default=Path("real_lovo_session"))
    ap.add_argument("--combine", default=None, help="average or joint (default: the pipeline's)")
    args = ap.parse_args()

    from mocap.fitting.lovo import leave_one_view_out
    from mocap.fitting.run import load_inputs, run_session

    prepare(args.sample, args.session)
    inp = load_inputs(args.session, combine=args.combine)
    cfg = inp.pipeline.fit
    t0 = time.perf_counter()
    res, out = run_session(args.session, combine=args.combine)  # writes output/smpl.npz for `mocap viz overlay`
    fit_s = time.perf_counter() - t0
    lovo = leave_one_view_out(inp.keypoints, inp.rig, inp.body, inp.spec, cfg)
    cams = inp.keypoints.cameras
    print(f"\n{inp.keypoints.num_frames} frames, {len(cams)} views, combine={cfg.combine}, weighting={cfg.weighting}; "
          f"all-view fit {fit_s:.1f} s\n")
    print("| camera | reprojection, all views fitted: mean / median px | leave-one-view-out: mean / median px "
          "| LOVO offset x, y px | LOVO less the offset: mean px |")
    print("|---|---|---|---|---|")
    lv, lm, lc, off = lovo.per_view(), lovo.per_view(np.median), lovo.per_view(centred=True), lovo.offsets()
    for v, c in enumerate(cams):
        e = res.error_px[:, v]
        print(f"| {c} | {np.nanmean(e):.1f} / {np.nanmedian(e):.1f} | {lv[c]:.1f} / {lm[c]:.1f} | "
              f"{off[c][0]:+.1f}, {off[c][1]:+.1f} | {lc[c]:.1f} |")
    print(f"| all | {np.nanmean(res.error_px):.1f} / {np.nanmedian(res.error_px):.1f} | "
          f"{lovo.overall():.1f} / {lovo.overall(np.median):.1f} | | |\n")
    print("Reprojection: per frame, the mean over the view's confident keypoints; LOVO: per keypoint and frame. "
          "Offset: the held-out view's mean residual (projected minus detected), one shift of its whole image "
          "that no fit of the other views can predict (calibration, or a detector reading that view off).\n")
    print("| keypoint | LOVO mean px | LOVO median px |")
    print("|---|---|---|")
    km = lovo.per_keypoint(np.median)
    for name, e in lovo.per_keypoint().items():
        if np.isfinite(e):
            print(f"| {name} | {e:.1f} | {km[name]:.1f} |")

if __name__ == "__main__":
    main()
