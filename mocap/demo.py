"""`mocap demo`: the whole chain on bundled samples, with no download and no licensed file.

1. Synthetic session (truth known): `mocap synth --render` writes a rendered session and ChArUco footage;
   the cameras are calibrated from that footage, the person is detected in the rendered videos, the body
   is fitted, the subject's shape is fitted and the sequence refitted with it held (Shape ReFit), the
   result exported (BVH; FBX when bpy is installed) and evaluated against the truth.
2. Real session (``examples/pose2sim_demo_single``): the Qualisys calibration is imported, the person
   detected, the body fitted and exported; reprojection errors per view and leave-one-view-out errors
   (fit on the other views, 2D error against the held-out view's detections) are reported.

Each step calls the stage's functions (no subprocess), is timed, and is skipped with a line saying why
when its stage is not installed. Everything is written under the demo folder; the samples are not modified.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mocap.errors import MocapError

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLE = REPO / "examples" / "pose2sim_demo_single"


class Skip(Exception):
    """A step that cannot run here (stage not installed, optional extra missing); the message says why."""


@dataclass
class Step:
    part: str
    name: str
    status: str  # ok, skipped, failed
    seconds: float
    detail: str = ""
    cpu_seconds: float = float("nan")  # of this process and its finished children


@dataclass(frozen=True)
class DemoSettings:
    """Sizes chosen so that the demo finishes in under 5 minutes on a 2-core laptop."""

    synth_cameras: int = 4
    synth_frames: int = 40
    synth_board_frames: int = 60
    synth_image_scale: float = 0.75  # 1440x810 instead of 1080p: rendering and detection take half the time
    synth_motion: str = "mixed"
    shape_frames: str = "0:30"
    lovo_frames: str = "0:100:5"  # leave-one-view-out refits every view's complement: on every 5th frame, not all
    overlays: bool = True
    seed: int = 0
    real_sample: Path | None = None  # default: examples/pose2sim_demo_single of this checkout
    # Both parts at once, one process each: nearly every step runs on one core, so on a 2-core machine this
    # halves the wall time.
    parallel: bool = True


@dataclass
class DemoResult:
    root: Path
    steps: list[Step] = field(default_factory=list)
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # table name -> {row: value}
    elapsed: float | None = None  # wall time of the whole demo; the steps of parallel parts overlap
    parallel: bool = False  # the parts ran side by side

    @property
    def seconds(self) -> float:
        return self.elapsed if self.elapsed is not None else sum(s.seconds for s in self.steps)

    def cpu_seconds(self, part: str | None = None) -> float:
        return sum(s.cpu_seconds for s in self.steps if part is None or s.part == part)


class _Runner:
    def __init__(self, result: DemoResult, log: Callable[[str], None]):
        self.result, self.log = result, log

    def __call__(self, part: str, name: str, fn: Callable[[], str | None]) -> bool:
        start, cpu = time.perf_counter(), _cpu_seconds()
        try:
            detail = fn() or ""
            status = "ok"
        except Skip as e:
            status, detail = "skipped", str(e)
        except MocapError as e:
            status, detail = "failed", str(e)
        seconds = time.perf_counter() - start
        self.result.steps.append(Step(part, name, status, seconds, detail, _cpu_seconds() - cpu))
        mark = {"ok": "ok     ", "skipped": "skipped", "failed": "FAILED "}[status]
        self.log(f"[{part}] {name:<28} {mark} {seconds:6.1f} s ({_cpu_seconds() - cpu:5.1f} s CPU)  {detail}")
        return status == "ok"


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its children that have ended."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _frame_slice(text: str) -> slice:
    """``"START:STOP[:STEP]"`` -> slice."""
    return slice(*(int(x) if x else None for x in text.split(":")))


def _need(module: str, what: str):
    """Import a stage module or skip the step, naming the stage."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Skip(f"{what} is not installed here ({e.name or module} missing)") from None


def align_rig(rig, reference):
    """``rig`` moved into ``reference``'s world frame by the similarity that best maps its camera centres onto
    the reference's (Umeyama), since a calibration fixes its own origin, orientation and scale only up to a
    gauge. Returns the aligned rig and per-camera centre (m) and orientation (degrees) errors."""
    from scipy.spatial.transform import Rotation

    from mocap.cameras import Camera, CameraRig

    names = [c.name for c in reference]
    A = np.array([rig[n].center for n in names])
    B = np.array([reference[n].center for n in names])
    mu_a, mu_b = A.mean(0), B.mean(0)
    a, b = A - mu_a, B - mu_b
    U, S, Vt = np.linalg.svd(b.T @ a)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    Q = U @ D @ Vt  # rotation taking rig-world vectors to reference-world vectors
    s = np.trace(np.diag(S) @ D) / (a ** 2).sum()
    cams = []
    for c in rig:
        R = c.R @ Q.T  # x_ref = s Q x + (mu_b - s Q mu_a): camera-frame points keep their metric via t / s
        C = s * Q @ c.center + mu_b - s * Q @ mu_a
        cams.append(Camera(c.name, c.K, c.dist, R, -R @ C, c.image_size))
    out = CameraRig(tuple(cams))
    centre_err = {n: float(np.linalg.norm(out[n].center - reference[n].center)) for n in names}
    rot_err = {n: float(np.degrees(Rotation.from_matrix(out[n].R @ reference[n].R.T).magnitude())) for n in names}
    return out, centre_err, rot_err


def leave_one_view_out(root: Path, frames: slice | None = None):
    """`mocap.fitting.lovo.leave_one_view_out` on a session, over ``frames`` (all by default; with a step, the
    frames are fitted without temporal smoothing, as they are no longer adjacent).

    The subject's shape is held at the betas of the session's all-view fit (``output/smpl.npz``) when there is
    one: ten numbers shared by all frames carry little of the held-out view, and fitting a shape per fold
    would double the cost. Poses and translations come from the other views only."""
    from dataclasses import replace

    import torch

    from mocap.fitting.lovo import leave_one_view_out as lovo
    from mocap.fitting.run import load_inputs

    inp = load_inputs(root)
    kp, cfg = inp.keypoints, inp.pipeline.fit
    if frames is not None:
        kp = replace(kp, keypoints=kp.keypoints[frames], boxes=kp.boxes[frames], detected=kp.detected[frames],
                     masks=None if kp.masks is None else kp.masks[frames],
                     mask_boxes=None if kp.mask_boxes is None else kp.mask_boxes[frames])
        if frames.step not in (None, 1):  # strided frames are not neighbours in time
            cfg = cfg.replace(smoothing=replace(cfg.smoothing, sigma_frames=0.0),
                              temporal=replace(cfg.temporal, accel_sigma=0.0))
    smpl = root / "output" / "smpl.npz"
    betas = torch.as_tensor(np.load(smpl)["betas"]) if smpl.is_file() else None
    return lovo(kp, inp.rig, inp.body, inp.spec, cfg, betas=betas)


def _mean_reprojection(path: Path) -> dict[str, float]:
    from mocap.viz.plot import reprojection_errors
    from mocap.viz.result import load_result

    rep = reprojection_errors(load_result(path))
    if rep is None:
        return {}
    err, cams = rep
    return {c: float(np.nanmean(err[:, v])) for v, c in enumerate(cams)}


def _export(smpl: Path, fmt: str) -> str:
    load_sequence = _need("mocap.io.smpl_npz", "the export stage").__dict__.get("load_sequence")
    export = _need("mocap.io.export", "the export stage")
    if load_sequence is None:
        raise Skip("the export stage is not installed here (mocap.io.smpl_npz.load_sequence missing)")
    from mocap.io.smpl_npz import hold_invalid_frames

    seq, held = hold_invalid_frames(load_sequence(smpl))
    out = export.export_sequence(seq, smpl.with_suffix(f".{fmt}"), fmt)
    return f"{out.name} ({out.stat().st_size / 1e6:.1f} MB{f'; {int(held.sum())} empty frames held' if held.any() else ''})"


def _metrics_line(m) -> str:
    return (f"MPJPE {m.mpjpe:.1f} mm, PA-MPJPE {m.pa_mpjpe:.1f} mm"
            + (f", PVE {m.pve:.1f} mm" if m.pve is not None else ""))


def _calibrate(root: Path) -> tuple[object, object]:
    """The calibrate stage on ``root/calibration/`` board footage: (rig, report)."""
    _need("mocap.calib.calibrate", "the calibrate stage")
    from mocap.calib.board import Board
    from mocap.calib.calibrate import calibrate_rig
    from mocap.calib.footage import detect_session, session_footage
    from mocap.calib.report import assess

    config, footage, sizes = session_footage(root)
    board = Board(config.board)
    cal = calibrate_rig(detect_session(board, footage, sizes), board)
    return cal.rig, assess(cal)


def run_synthetic(root: Path, settings: DemoSettings, step: _Runner, result: DemoResult) -> None:
    part = "synthetic"

    def synth():
        mod = _need("mocap.synth.session", "the synth stage")
        cfg = mod.SynthConfig(cameras=settings.synth_cameras, frames=settings.synth_frames, motion=settings.synth_motion,
                              seed=settings.seed, render=True, board_frames=settings.synth_board_frames,
                              image_scale=settings.synth_image_scale)
        res = mod.synthesize(root, cfg)
        # The truth is kept aside: the demo recovers calibration and keypoints from the rendered footage.
        shutil.move(root / "calibration.toml", root / "calibration_true.toml")
        (root / "output" / "keypoints2d.h5").rename(root / "output" / "keypoints2d_synthetic.h5")
        sizes = sorted({c.image_size for c in res.rig})
        return f"{cfg.cameras} cameras x {cfg.frames} frames ({', '.join(f'{w}x{h}' for w, h in sizes)}), motion {cfg.motion}"

    if not step(part, "synthesise + render", synth):
        return

    def calibrate():
        from mocap.io.calibration_toml import load_rig, save_rig

        rig, report = _calibrate(root)
        truth = load_rig(root / "calibration_true.toml")
        aligned, centre, rot = align_rig(rig, truth)
        save_rig(aligned, root / "calibration.toml", {"created_by": "mocap demo (calibrated, aligned to the true world frame)",
                                                      **report.to_metadata()})
        result.figures["synthetic: calibration vs truth"] = {
            "board reprojection error (px)": report.mean_px,
            "camera centre error, max (mm)": 1000 * max(centre.values()),
            "camera orientation error, max (deg)": max(rot.values()),
        }
        return f"{report.mean_px:.2f} px; centres within {1000 * max(centre.values()):.1f} mm of the truth"

    if not step(part, "calibrate (ChArUco footage)", calibrate):
        from mocap.io.calibration_toml import load_rig, save_rig

        save_rig(load_rig(root / "calibration_true.toml"), root / "calibration.toml", {"created_by": "mocap synth (true rig)"})
        step.log(f"[{part}] continuing with the true calibration")
    _detect_and_fit(root, part, step, result, settings, shape=True, gt=root / "ground_truth.npz")


def _detect_and_fit(root: Path, part: str, step: _Runner, result: DemoResult, settings: DemoSettings,
                    shape: bool, gt: Path | None) -> None:
    from mocap.session import Session

    def detect():
        stage = _need("mocap.detect.stage", "the detect stage")
        res = stage.detect_session(Session.load(root), force=True)
        rates = ", ".join(f"{c} {100 * r:.0f} %" for c, r in res.detection_rate.items())
        return f"detection rate {rates}"

    if not step(part, "detect (BlazePose)", detect):
        if part == "synthetic" and (root / "output" / "keypoints2d_synthetic.h5").is_file():
            shutil.copy(root / "output" / "keypoints2d_synthetic.h5", root / "output" / "keypoints2d.h5")
            step.log(f"[{part}] continuing with the synthetic keypoints")
        else:
            return
    smpl = root / "output" / "smpl.npz"

    def fit():
        run = _need("mocap.fitting.run", "the fitting stage")
        from mocap.fitting.swaps import swap_counts

        res, _ = run.run_session(root)
        reps = _mean_reprojection(smpl)
        result.figures.setdefault(f"{part}: reprojection error (px)", {}).update(reps)
        swapped = swap_counts(res.swaps, res.cameras) if res.swaps is not None else {}
        return (f"{len(res.flags)} frames; reprojection " + ", ".join(f"{c} {e:.1f} px" for c, e in reps.items())
                + "".join(f"; {c}: left/right relabelled in {sum(k.values())} frames" for c, k in swapped.items()))

    if not step(part, "fit (mocap run)", fit):
        return

    def evaluate(label: str):
        def go():
            if gt is None:
                return None
            mod = _need("mocap.eval.evaluate", "the eval stage")
            m = mod.evaluate_files(smpl, gt)
            result.figures.setdefault(f"{part}: accuracy vs truth (mm)", {}).update(
                {f"{label} MPJPE": m.mpjpe, f"{label} PA-MPJPE": m.pa_mpjpe, **({f"{label} PVE": m.pve} if m.pve is not None else {})})
            return _metrics_line(m)
        return go

    if gt is not None:
        step(part, "eval vs truth", evaluate("fit"))
    if shape:
        subject = root / "output" / "subject.npz"

        def fit_shape():
            run = _need("mocap.fitting.run", "the fitting stage")
            res, _ = run.shape_session(root, settings.shape_frames, subject)
            return f"betas from frames {settings.shape_frames}, {res.error_px:.2f} px"

        if step(part, "shape (mocap shape)", fit_shape):
            def refit():
                run = _need("mocap.fitting.run", "the fitting stage")
                shutil.copy(smpl, root / "output" / "smpl_free_shape.npz")
                res, _ = run.run_session(root, shape=subject)
                return f"{len(res.flags)} frames with the subject's betas held"

            if step(part, "Shape ReFit (run --shape)", refit) and gt is not None:
                step(part, "eval vs truth (Shape ReFit)", evaluate("Shape ReFit"))
    if part == "real":
        def lovo():
            _need("mocap.fitting.sequence", "the fitting stage")
            res = leave_one_view_out(root, _frame_slice(settings.lovo_frames))
            mean, median = res.per_view(np.mean), res.per_view(np.median)
            stat = {c: (mean[c], median[c]) for c in res.cameras}
            result.figures[f"real: leave-one-view-out 2D error (px, frames {settings.lovo_frames})"] = {
                f"{c} {name}": v[i] for c, v in stat.items() for i, name in enumerate(("mean", "median"))}
            return f"frames {settings.lovo_frames}, mean / median: " + ", ".join(f"{c} {m:.1f} / {md:.1f} px"
                                                                              for c, (m, md) in stat.items())

        step(part, "leave-one-view-out", lovo)
    step(part, "export BVH", lambda: _export(smpl, "bvh"))

    def fbx():
        import importlib.util

        if importlib.util.find_spec("bpy") is None:
            raise Skip("bpy is not installed (pip install 'mocap[fbx]')")
        return _export(smpl, "fbx")

    step(part, "export FBX", fbx)
    if settings.overlays:
        def overlay():
            from mocap.viz.overlay import write_overlays

            # Portrait footage (the real sample) gets a taller grid so that its four views stay legible.
            res = write_overlays(root, scale=0.5, grid_height=720 if part == "synthetic" else 1080)
            return f"{len(res.views)} views + grid, {res.frames} frames in {res.grid.parent}"

        step(part, "overlay videos", overlay)


def run_real(root: Path, settings: DemoSettings, step: _Runner, result: DemoResult) -> None:
    part = "real"
    sample = settings.real_sample or REAL_SAMPLE
    if not sample.is_dir():
        step(part, "sample", lambda: (_ for _ in ()).throw(Skip(f"{sample} not found")))
        return
    (root / "videos").mkdir(parents=True, exist_ok=True)
    for video in sorted((sample / "videos").iterdir()):
        dest = root / "videos" / video.name
        if not dest.exists():
            try:
                dest.symlink_to(video.resolve())
            except OSError:
                shutil.copy(video, dest)

    def calib_import():
        convert = _need("mocap.calib.convert", "the calibrate stage")
        from mocap.io.calibration_toml import save_rig

        qca = sample / "calibration" / "Calib.qca.txt"
        rig = convert.import_rig(qca, "qualisys")
        save_rig(rig, root / "calibration.toml", {"created_by": "mocap demo", "source": f"Qualisys {qca.name}"})
        dists = [float(np.linalg.norm(c.center)) for c in rig]
        return f"{len(rig)} cameras, {min(dists):.1f}-{max(dists):.1f} m from the origin"

    if not step(part, "import Qualisys calibration", calib_import):
        return
    _detect_and_fit(root, part, step, result, settings, shape=False, gt=None)


_PARTS = {"synthetic": run_synthetic, "real": run_real}


def _write_report(name: str, folder: Path, step: _Runner, result: DemoResult) -> None:
    if not (folder / "output" / "smpl.npz").is_file():
        return

    def report():
        from mocap.viz.report import Table, write_report

        timings = {f"{s.name}": s.seconds for s in result.steps if s.part == name and s.status == "ok"}
        # The report has its own table of the final fit's reprojection errors; the demo adds the rest.
        extra = [Table(_sentence(t.removeprefix(f"{name}: ")), ["item", "value"], [[k, v] for k, v in rows.items()],
                       id=f"demo-{i}")
                 for i, (t, rows) in enumerate(result.figures.items())
                 if t.startswith(name) and "reprojection error (px)" not in t]
        gt = folder / "ground_truth.npz"
        return str(write_report(folder, gt=gt if gt.is_file() else None, timings=timings, extra_tables=extra))

    step(name, "report", report)


def _run_part(name: str, folder: Path, settings: DemoSettings, log: Callable[[str], None],
              result: DemoResult | None = None) -> DemoResult:
    """One part of the demo and its report, its steps and figures added to ``result`` (a new one by default)."""
    result = DemoResult(folder.parent) if result is None else result
    step = _Runner(result, log)
    _PARTS[name](folder, settings, step, result)
    _write_report(name, folder, step, result)
    return result


def _part_process(name: str, folder: Path, settings: DemoSettings, conn) -> None:
    """Entry point of a part's own process: its steps and figures go back through ``conn``."""
    try:
        conn.send(_run_part(name, folder, settings, lambda line: print(line, flush=True)))
    except Exception as e:  # a bug, not a user mistake: the parent reports it as the part's failure
        conn.send(f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def _run_parallel(root: Path, parts: tuple[str, ...], settings: DemoSettings, result: DemoResult) -> None:
    import multiprocessing

    # spawn, not fork: a forked child would inherit whatever torch or OpenCV threads the parent has started.
    ctx = multiprocessing.get_context("spawn")
    running = []
    for name in parts:
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_part_process, args=(name, root / name, settings, send), name=f"mocap demo {name}")
        proc.start()
        send.close()
        running.append((name, proc, recv))
    for name, proc, recv in running:
        try:
            sub = recv.recv()
        except EOFError:
            sub = None
        proc.join()
        if isinstance(sub, DemoResult):
            result.steps += sub.steps
            result.figures.update(sub.figures)
        else:
            why = sub or f"its process ended with exit code {proc.exitcode}"
            result.steps.append(Step(name, "part", "failed", 0.0, f"the {name} part stopped: {why}", 0.0))


def run_demo(out: str | os.PathLike = "demo_output", settings: DemoSettings = DemoSettings(),
             log: Callable[[str], None] = print, parts: tuple[str, ...] = ("synthetic", "real")) -> DemoResult:
    """Run the demo under ``out`` (created; an earlier demo there is replaced) and write ``out/summary.md`` and a
    report per session (``<session>/output/report.html``).

    With ``settings.parallel`` and both parts, each part runs in its own process, and its lines are printed
    by that process (``log`` then serves the reports only)."""
    start = time.perf_counter()
    root = Path(out)
    result = DemoResult(root)
    for name in parts:
        folder = root / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    result.parallel = settings.parallel and len(parts) > 1
    if result.parallel:
        _run_parallel(root, parts, settings, result)
    else:
        for name in parts:
            _run_part(name, root / name, settings, log, result)
    result.elapsed = time.perf_counter() - start
    write_summary(result, root / "summary.md")
    return result


def _sentence(title: str) -> str:
    return title[:1].upper() + title[1:]


def summary_markdown(result: DemoResult) -> str:
    lines = ["# mocap demo", "", "| part | step | status | seconds | CPU seconds | detail |",
             "| --- | --- | --- | ---: | ---: | --- |"]
    for s in result.steps:
        lines.append(f"| {s.part} | {s.name} | {s.status} | {s.seconds:.1f} | {s.cpu_seconds:.1f} | {s.detail.replace('|', '/')} |")
    parts = list(dict.fromkeys(s.part for s in result.steps))
    per_part = ", ".join(f"{p} {result.cpu_seconds(p):.0f} s" for p in parts)
    how = "the parts ran side by side" if result.parallel else "the parts ran one after the other"
    lines += ["", f"Total: {result.seconds:.0f} s wall, {result.cpu_seconds():.0f} s CPU ({per_part}). A part's steps run "
              f"one after another, mostly on one core; {how}.", ""]
    for title, rows in result.figures.items():
        lines += [f"## {title}", "", "| | value |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.2f} |" for k, v in rows.items()]
        lines.append("")
    return "\n".join(lines)


def write_summary(result: DemoResult, path: Path) -> Path:
    from mocap.io.atomic import write_text

    write_text(path, summary_markdown(result))
    return path
