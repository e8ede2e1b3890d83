"""Several people: association, tracking and per-person fits, on real and synthetic sessions.

    python benchmarks/people.py [--real ../shared/data/pose2sim_demo_multi] [--single ../shared/data/pose2sim_demo_single]
                                [--work DIR] [--people 2,3] [--frames 120] [--skip-real] [--skip-synthetic]

Real sessions (videos linked, Qualisys calibration imported, detections by `mocap detect` unless the session
folder under --work already holds them): every person found is fitted (`mocap run`); per person, the frames
tracked, the frames where at least 2 views hold that person, the largest frame-to-frame jump of the
person's centre (a switch to another person shows as a jump of metres), the mean reprojection error and
the leave-one-view-out error (`mocap.fitting.lovo`, the held-out view's own detections of that person).

Synthetic sessions (`mocap synth --people N`, 4 cameras, keypoints only, 3 px noise, 5 % outliers, 10 %
occlusion, people hiding each other): the people fitted together, identities matched to the truth
(`mocap.eval.people`), MPJPE per person and identity switches; each person is also synthesised alone (same
motion, rig and noise; no other person) and fitted, and the ratio of the two MPJPEs is printed. With
``--render SCALE`` the sessions are rendered instead (images SCALE times 1080p, true calibration) and every
person is found by `mocap detect` in the videos, masks included, as in a real session.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def real(sample: Path, root: Path) -> None:
    from real_lovo import prepare  # this folder is on the path when run as a script
    from mocap.fitting.lovo import leave_one_view_out
    from mocap.fitting.run import load_inputs, run_people

    prepare(sample, root)
    t0 = time.perf_counter()
    fits, _ = run_people(root)
    seconds = time.perf_counter() - t0
    inp = load_inputs(root)
    print(f"\n### {sample.name}: {len(fits)} people fitted in {seconds:.1f} s "
          f"({inp.detections.num_slots} detection slots per view)\n")
    print("| person | frames tracked | frames with >= 2 views | largest centre jump, m/frame | "
          "reprojection mean px | LOVO mean px | views left out (frames) |")
    print("|---|---|---|---|---|---|---|")
    for fit in fits:
        a = inp.association
        c = a.centers[fit.person]
        jump = np.nanmax(np.linalg.norm(np.diff(c, axis=0), axis=-1)) if np.isfinite(c).sum() > 3 else float("nan")
        first, last = a.span(fit.person)
        res = fit.result
        lovo = leave_one_view_out(fit.keypoints, inp.rig, inp.body, inp.spec, inp.pipeline.fit, betas=res.betas)
        left = (res.view_reasons[first:last + 1] != 0).sum(0)
        print(f"| {fit.person} | {last - first + 1} | {int((a.views_seen(fit.person) >= 2).sum())} | {jump:.3f} | "
              f"{np.nanmean(res.error_px):.1f} | {lovo.overall():.1f} | "
              f"{', '.join(f'{cam} {n}' for cam, n in zip(res.cameras, left) if n) or '-'} |")


def synthesize_session(out: Path, cfg, alone: int | None = None) -> None:
    """`mocap synth` into ``out``; rendered sessions are then detected from their videos, like footage."""
    from mocap.synth.session import synthesize

    synthesize(out, cfg, alone=alone)
    if cfg.render:
        from mocap.detect.stage import detect_session
        from mocap.session import Session

        (out / "output" / "keypoints2d.h5").rename(out / "output" / "keypoints2d_synthetic.h5")
        detect_session(Session.load(out))


def synthetic(n: int, frames: int, root: Path, seed: int, render: float | None = None) -> None:
    """``render``: the image scale of rendered sessions; None for keypoint-only ones."""
    from mocap.eval.evaluate import evaluate_files
    from mocap.eval.people import evaluate_people
    from mocap.fitting.run import run_people
    from mocap.synth.session import SynthConfig

    cfg = SynthConfig(cameras=4, frames=frames, motion="walk", people=n, seed=seed, render=render is not None,
                      board_frames=10, image_scale=render or 1.0)
    together = root / f"people{n}"
    synthesize_session(together, cfg)
    t0 = time.perf_counter()
    fits, _ = run_people(together)
    seconds = time.perf_counter() - t0
    m = evaluate_people(together / "output" / "people", together / "ground_truth")
    kind = f"rendered at {render} scale, detected" if render else "keypoints only"
    print(f"\n### {n} people, 4 cameras, {frames} frames, {kind}: {len(fits)} people fitted in "
          f"{seconds:.1f} s; identity switches {sum(m.switches.values())}; missed {list(m.unmatched_truth)}; "
          f"false tracks {list(m.unmatched_fit)}\n")
    print("| true person | fitted id | MPJPE together mm | MPJPE alone mm | ratio | frames evaluated |")
    print("|---|---|---|---|---|---|")
    alone_s = 0.0
    for t, f in m.pairs.items():
        solo = root / f"people{n}_alone{t}"
        synthesize_session(solo, cfg, alone=int(t))
        t0 = time.perf_counter()
        run_people(solo)
        alone_s += time.perf_counter() - t0
        a = evaluate_files(solo / "output" / "smpl.npz", together / "ground_truth" / f"{t}.npz")
        p = m.metrics[t]
        print(f"| {t} | {f} | {p.mpjpe:.1f} | {a.mpjpe:.1f} | {p.mpjpe / a.mpjpe:.2f} | {100 * p.frames_evaluated:.0f} % |")
    print(f"\nfit time: {seconds:.1f} s together, {alone_s:.1f} s for the {len(m.pairs)} people alone "
          f"(ratio {seconds / max(alone_s, 1e-9):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, default=SHARED / "pose2sim_demo_multi")
    ap.add_argument("--single", type=Path, default=SHARED / "pose2sim_demo_single")
    ap.add_argument("--work", type=Path, default=Path("people_benchmark"))
    ap.add_argument("--people", default="2,3")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--render", type=float, default=None, metavar="SCALE",
                    help="render the synthetic sessions at this image scale (e.g. 0.5) and detect the people in them")
    args = ap.parse_args()
    if not args.skip_real:
        for sample in (args.real, args.single):
            real(sample, args.work / sample.name)
    if not args.skip_synthetic:
        import shutil

        for n in (int(x) for x in args.people.split(",")):
            for old in args.work.glob(f"people{n}*"):
                shutil.rmtree(old)
            synthetic(n, args.frames, args.work, args.seed, args.render)


if __name__ == "__main__":
    main()
