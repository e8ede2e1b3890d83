"""One function per batch step, each calling the stage function its single command calls, and the test that
lets a re-run skip a step that is done.

A step is done when every output exists, is at least as new as every input, and, where the output records its
settings and input hashes (``smpl.npz`` and ``subject.npz`` metadata: the resolved pipeline, the calibration's
and the keypoints' SHA-256), those match what the step would use now. Detection keeps its own record per view
in ``keypoints2d.h5`` (footage fingerprint and detector settings) and skips the views that match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: Frames `mocap shape` fits by default; the batch's shape step uses the same.
SHAPE_FRAMES = "0:60"


@dataclass(frozen=True)
class Outcome:
    status: str  # "ran" or "skipped"
    detail: str = ""


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def newer(outputs: list[Path], inputs: list[Path]) -> bool:
    """Every output exists and none is older than any existing input."""
    if not all(p.is_file() for p in outputs):
        return False
    stamps = [_mtime(p) for p in inputs if p.exists()]
    return not stamps or min(map(_mtime, outputs)) >= max(stamps)


def footage(root: Path) -> list[Path]:
    """The session's footage files (videos and image folders)."""
    return [p for folder in (root / "videos", root / "images") if folder.is_dir() for p in sorted(folder.iterdir())]


def _json_equal(a, b) -> bool:
    """Equal once both went through JSON (as the metadata did: tuples become lists)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _fit_settings_match(meta: dict, root: Path) -> str | None:
    """Why a fit's metadata no longer matches the session (None when it does)."""
    from mocap.config import to_dict
    from mocap.fitting.config import load_pipeline
    from mocap.fitting.run import session_config
    from mocap.io.calibration_toml import file_sha256

    scfg = session_config(root)
    if not _json_equal(meta.get("pipeline"), to_dict(load_pipeline(scfg.pipeline, dict(scfg.overrides)))):
        return "the pipeline settings changed"
    if meta.get("calibration_sha256") != file_sha256(root / "calibration.toml"):
        return "calibration.toml changed"
    if meta.get("keypoints_sha256") != file_sha256(root / "output" / "keypoints2d.h5"):
        return "keypoints2d.h5 changed"
    return None


def _fit_inputs(root: Path) -> list[Path]:
    return [root / "calibration.toml", root / "output" / "keypoints2d.h5", root / "session.yaml"]


def calibrate(root: Path, force: bool) -> Outcome:
    from mocap.calib.stage import calibrate_or_import, calibration_sources

    out = root / "calibration.toml"
    sources = calibration_sources(root)
    if not force and sources and newer([out], sources + [root / "session.yaml"]):
        return Outcome("skipped", "calibration.toml is newer than its sources")
    if not sources and out.is_file():
        return Outcome("skipped", "nothing to calibrate from; calibration.toml is used as it is")
    return Outcome("ran", calibrate_or_import(root))


def detect(root: Path, force: bool) -> Outcome:
    from mocap.detect.stage import detect_session
    from mocap.session import Session

    if not footage(root) and (root / "output" / "keypoints2d.h5").is_file():
        return Outcome("skipped", "no footage; keypoints2d.h5 is used as it is")
    # One view at a time: the batch already runs one session per core.
    res = detect_session(Session.load(root), force=force, workers=1)
    rates = ", ".join(f"{c} {r:.0%}" for c, r in res.detection_rate.items())
    if not res.detected:
        return Outcome("skipped", "every view already detected from the same footage and settings")
    return Outcome("ran", f"person found in {rates}")


def shape(root: Path, force: bool) -> Outcome:
    from mocap.fitting.run import shape_session
    from mocap.io.subject import load_subject

    out = root / "output" / "subject.npz"
    if not force and newer([out], _fit_inputs(root)):
        meta = load_subject(out).meta
        why = _fit_settings_match(meta, root) or (None if meta.get("frames") == SHAPE_FRAMES else "other frames")
        if why is None:
            return Outcome("skipped", "subject.npz is up to date")
    res, _ = shape_session(root, SHAPE_FRAMES, out)
    return Outcome("ran", f"betas from {len(res.frames)} frames, {res.error_px:.2f} px")


def fit(root: Path, force: bool, with_shape: bool) -> Outcome:
    from mocap.fitting.run import run_people
    from mocap.io.smpl_npz import load_sequence

    out = root / "output" / "smpl.npz"
    subject = root / "output" / "subject.npz" if with_shape else None
    inputs = _fit_inputs(root) + ([subject] if subject else [])
    if not force and newer([out], inputs):
        meta = load_sequence(out).meta
        same_shape = meta.get("shape_file") == (str(subject) if subject else None)
        if same_shape and _fit_settings_match(meta, root) is None:
            return Outcome("skipped", "smpl.npz is up to date")
    fits, _ = run_people(root, shape=subject)
    return Outcome("ran", f"{len(fits)} {'person' if len(fits) == 1 else 'people'} x {len(fits[0].result.flags)} frames"
                   + (", the subject's shape held" if subject else ""))


def export(root: Path, force: bool, fmt: str) -> Outcome:
    from mocap.io.export import default_output, export_sequence
    from mocap.io.smpl_npz import hold_invalid_frames, load_sequence

    smpl = root / "output" / "smpl.npz"
    out = default_output(smpl, fmt)
    if not force and newer([out], [smpl]):
        return Outcome("skipped", f"{out.name} is newer than smpl.npz")
    seq, held = hold_invalid_frames(load_sequence(smpl))
    export_sequence(seq, out, fmt)
    return Outcome("ran", out.name + (f"; {int(held.sum())} empty frames hold the last pose" if held.any() else ""))


def overlay(root: Path, force: bool) -> Outcome:
    from mocap.viz.overlay import write_overlays

    grid = root / "output" / "overlay" / "grid.mp4"
    inputs = _fit_inputs(root) + [root / "output" / "smpl.npz"] + footage(root)
    if not force and newer([grid], inputs):
        return Outcome("skipped", "overlay videos are newer than their inputs")
    res = write_overlays(root)
    return Outcome("ran", f"{len(res.views)} views + grid, {res.frames} frames")


def report(root: Path, force: bool) -> Outcome:
    from mocap.viz.report import write_report

    out = root / "output" / "report.html"
    inputs = _fit_inputs(root) + [root / "output" / n for n in ("smpl.npz", "overlay/grid.mp4")] + [
        root / "ground_truth.npz"]
    if not force and newer([out], inputs):
        return Outcome("skipped", "report.html is newer than its inputs")
    write_report(root)
    return Outcome("ran", "report.html")


def step_function(step: str, steps: tuple[str, ...]) -> Callable[[Path, bool], Outcome]:
    """The function running ``step`` (``"export:bvh"``) of a batch of ``steps``: ``run`` holds the shape
    fitted by the batch's ``shape`` step when there is one."""
    name, _, arg = step.partition(":")
    if name == "run":
        return lambda root, force: fit(root, force, "shape" in steps)
    if name == "export":
        return lambda root, force: export(root, force, arg)
    return {"calibrate": calibrate, "detect": detect, "shape": shape, "overlay": overlay, "report": report}[name]
