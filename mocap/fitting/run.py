"""`mocap run` and `mocap shape` as plain functions over a session folder: load, fit, save.

Needs ``calibration.toml`` and ``output/keypoints2d.h5`` (detection runs first when it is missing); footage
itself is not read otherwise. Inputs are checked before any fitting: cameras against the calibration, image
sizes (`mocap.calib.checks.conform_rig`), the up axis, the frame rate (session.yaml's wins over the file's).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from mocap import __version__
from mocap.body.model import JOINT_NAMES, BodyModel, load_body
from mocap.config import SessionConfig, load_config, read_yaml, to_dict
from mocap.errors import ConfigError, FittingError, about, InputDataError, MissingDependencyError, MocapWarning, listing
from mocap.fitting.chunks import by_frames
from mocap.fitting.config import PipelineConfig, load_pipeline
from mocap.fitting.sequence import FLAGS, FitResult, Progress, ShapeResult, fit_sequence, fit_shape
from mocap.fitting.solver import BodyPoints
from mocap.fitting.swaps import SWAPS, fix_swaps, swap_counts
from mocap.fitting.people import (choose_people, fit_without_far_views, implausible_keypoints, keypoint_positions,
                                  person_dir, with_association)
from mocap.fitting.tracking import VIEW_REASONS, Association, associate
from mocap.fitting.views import select_views
from mocap.io.atomic import check_destination
from mocap.io.calibration_toml import file_sha256, load_rig
from mocap.io.keypoints_h5 import Detections2D, Keypoints2D, read_detections
from mocap.io.smpl_npz import SmplSequence, save_sequence
from mocap.io.subject import SubjectShape, load_subject, save_subject

#: A keypoint format whose points are SMPL's 24 joints (synthetic data, imported 3D joint tracks).
SMPL24 = SimpleNamespace(format="smpl24", names=JOINT_NAMES, joint_index=np.arange(24),
                         vertex_index=-np.ones(24, dtype=np.int64), weights=np.ones(24))


def keypoint_spec(body: BodyModel, fmt: str):
    """The body points matching detector format ``fmt``."""
    if fmt == "smpl24":
        return SMPL24
    try:
        from mocap.body.keypoints import keypoint_spec as spec_of
    except ImportError:
        raise MissingDependencyError(f"keypoint format {fmt!r} needs mocap.body.keypoints, which this install lacks") from None
    return spec_of(body, fmt)


def session_config(root: Path) -> SessionConfig:
    path = root / "session.yaml"
    return load_config(SessionConfig, read_yaml(path), str(path)) if path.is_file() else SessionConfig()


def _detections(root: Path) -> Detections2D:
    """Every detection of the session; detection runs first when the file is missing."""
    path = root / "output" / "keypoints2d.h5"
    if not path.is_file():
        from mocap.detect.stage import detect_session
        from mocap.session import Session

        try:
            session = Session.load(root)
        except InputDataError as e:
            raise InputDataError(f"{path}: no keypoints, and none can be detected: {e}") from None
        detect_session(session)
    return read_detections(path)


def _check_keypoints(kp: Detections2D, path: Path, scfg: SessionConfig, min_confidence: float) -> Detections2D:
    """Frame rate (session.yaml's wins), at least two views, some usable keypoints."""
    if scfg.fps is not None:
        kp = dataclasses.replace(kp, fps=scfg.fps)
    elif not (np.isfinite(kp.fps) and kp.fps > 0):
        raise ConfigError(f"{path.parent.parent / 'session.yaml'}: no frame rate ({path} has none: image folders "
                          "carry none); add a line `fps: 30` (your capture's rate)")
    if len(kp.cameras) < 2:
        raise FittingError(f"{path}: only camera {listing(kp.cameras)}; multi-view fitting needs at least 2 views")
    conf = kp.keypoints[..., 2]
    if not (np.isfinite(kp.keypoints).all(-1) & (conf >= min_confidence)).any():
        raise InputDataError(f"{path}: no keypoint with confidence >= {min_confidence:g} in any frame or view; "
                             "detect again (`mocap detect --force`)")
    return kp


def _check_rig(rig, kp: Detections2D, path: Path) -> tuple[object, list[str]]:
    """The rig in the keypoints' views, sized for their images, y up; warnings for what was adapted."""
    from mocap.calib.checks import check_up, conform_rig

    rig, notes = conform_rig(rig, dict(zip(kp.cameras, kp.image_sizes.tolist())), path, "footage")
    check_up(rig, path)
    for note in notes:
        warnings.warn(note, MocapWarning, stacklevel=2)
    return rig, notes


def load_shape(path: Path, body: BodyModel) -> torch.Tensor:
    """Betas ``(10,)`` of a subject file written by :func:`shape_session`, checked against ``body``."""
    subject = load_subject(path)
    if subject.surface_model != body.name:
        raise InputDataError(f"{path}: shape fitted with body model {subject.surface_model!r}, but this session uses "
                             f"{body.name!r}; refit it with `mocap shape`")
    betas = subject.betas
    return torch.as_tensor(betas, dtype=body.dtype)


@dataclasses.dataclass(frozen=True)
class Inputs:
    root: Path
    session: SessionConfig
    pipeline: PipelineConfig
    body: BodyModel
    keypoints: Keypoints2D
    rig: object  # CameraRig in the keypoints' view order
    spec: object
    checkpoint: Path | None = None  # ReFit checkpoint (learned pipelines)
    swaps: np.ndarray | None = None  # (F, V) left/right relabellings applied to ``keypoints`` (fitting.swaps)
    first_frame: int = 0  # session frame of ``keypoints``' frame 0 (``frames`` START)
    calibration_warnings: tuple[str, ...] = ()  # what the calibration needed to fit the footage (calib.checks)
    detections: Detections2D | None = None  # every detection of the views used
    association: Association | None = None  # the people found in ``detections``
    people: tuple[int, ...] = (0,)  # the ids to fit, the main subject (whose detections ``keypoints`` holds) first

    def person(self, person: int) -> tuple[Keypoints2D, np.ndarray | None]:
        """One person's detections (left/right swaps undone when the pipeline says so) and the swap codes."""
        return _person_keypoints(self.detections, self.association, person, self.rig, self.pipeline.fit.fix_swaps)


def load_inputs(root: Path, views: int | None = None, pipeline: str | None = None, combine: str | None = None,
                checkpoint: Path | None = None, need_checkpoint: bool = False, frames: str | None = None,
                person: int | None = None) -> Inputs:
    """Everything a fit needs; ``keypoints`` are the main subject's (``person``, default the most seen);
    ``frames`` ``"START:STOP"`` keeps those frames of the detections only."""
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"{root}: session folder not found")
    scfg = session_config(root)
    overrides = dict(scfg.overrides)
    if combine is not None:
        if combine not in ("average", "joint"):
            raise ConfigError(f"--combine {combine!r}: use average or joint")
        overrides = {**overrides, "fit": {**overrides.get("fit", {}), "combine": combine}}
    pcfg = load_pipeline(pipeline or scfg.pipeline, overrides)
    body = None
    if pcfg.updater != "keypoints":  # ReFit: SMPL's mesh and a checkpoint, checked before any detection runs
        from mocap.fitting.refit.session import refit_requirements

        body, checkpoint = refit_requirements(checkpoint or pcfg.refit.checkpoint, scfg.body, scfg.gender,
                                              need_checkpoint)
    rig_all = load_rig(root / "calibration.toml")
    det = _detections(root)
    first = 0
    if frames is not None:
        idx = parse_frames(frames, det.num_frames)
        det, first = frame_range(det, int(idx[0]), int(idx[-1]) + 1), int(idx[0])
    missing = [c for c in det.cameras if c not in rig_all]
    if missing:
        raise InputDataError(f"{root / 'calibration.toml'}: no calibration for camera(s) {listing(missing)} of the "
                             f"keypoints; it has {listing(rig_all.names)}")
    if scfg.cameras is not None:
        det = det.select(scfg.cameras)
    if views is not None:
        if views < 2:
            raise ConfigError(f"--views {views}: multi-view fitting needs at least 2 views")
        keep = select_views(rig_all.subset(det.cameras), det.best().keypoints, views, pcfg.fit.min_confidence)
        det = det.select([det.cameras[i] for i in keep])
    det = _check_keypoints(det, root / "output" / "keypoints2d.h5", scfg, pcfg.fit.min_confidence)
    rig, notes = _check_rig(rig_all.subset(det.cameras), det, root / "calibration.toml")
    body = load_body(scfg.body, scfg.gender) if body is None else body
    assoc = associate(det, rig, pcfg.fit.association)
    people = choose_people(assoc, scfg.person if person is None else person, scfg.people, scfg.max_people)
    kp, swaps = _person_keypoints(det, assoc, people[0], rig, pcfg.fit.fix_swaps)
    return Inputs(root, scfg, pcfg, body, kp, rig, keypoint_spec(body, det.format), checkpoint, swaps, first,
                  tuple(notes), det, assoc, tuple(people))


def _person_keypoints(det: Detections2D, assoc: Association, person: int, rig,
                      fix: bool) -> tuple[Keypoints2D, np.ndarray | None]:
    """`Inputs.person` before there are inputs."""
    kp = assoc.keypoints(det, person)
    return fix_swaps(kp, rig) if fix else (kp, None)


def frame_range(det: Detections2D, start: int, stop: int) -> Detections2D:
    """Frames ``start .. stop-1`` of ``det`` (every per-frame array cut alike)."""
    cut = slice(start, stop)
    return dataclasses.replace(det, keypoints=det.keypoints[cut], boxes=det.boxes[cut], scores=det.scores[cut],
                               masks=None if det.masks is None else det.masks[cut],
                               mask_boxes=None if det.mask_boxes is None else det.mask_boxes[cut],
                               guided=None if det.guided is None else det.guided[cut])


def default_output(root: Path, frames: tuple[int, int] | None = None) -> Path:
    """``output/smpl.npz``; a part of the take, ``frames`` (start, stop), goes beside it
    (``smpl_frames_10-50.npz``), so that the commands that read ``output/smpl.npz`` frame by frame with the
    footage (report, overlay) never pair a part with the wrong frames."""
    name = "smpl.npz" if frames is None else f"smpl_frames_{frames[0]}-{frames[1]}.npz"
    return Path(root) / "output" / name


def _metadata(inp: Inputs, extra: dict) -> dict:
    from importlib.metadata import version

    return {
        "versions": {"mocap": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "smplx": version("smplx"), "python": platform.python_version()},  # smplx has no __version__
        "pipeline": to_dict(inp.pipeline),
        "body_model": inp.body.name,
        "gender": inp.body.gender,
        "keypoint_format": inp.keypoints.format,
        "cameras": list(inp.keypoints.cameras),
        "calibration_sha256": file_sha256(inp.root / "calibration.toml"),
        # With the pipeline above, what `mocap batch` compares to tell whether a fit is still up to date.
        "keypoints_sha256": file_sha256(inp.root / "output" / "keypoints2d.h5"),
        "world_frame": "metres, y up",
        "left_right_swaps": None if inp.swaps is None else swap_counts(inp.swaps, inp.keypoints.cameras),
        "calibration_warnings": list(inp.calibration_warnings),
        **extra,
    }


@dataclasses.dataclass(frozen=True)
class PersonFit:
    person: int
    result: FitResult
    path: Path  # output/people/<id>/smpl.npz
    keypoints: Keypoints2D  # the person's detections as fitted (swaps undone, views far from the fit removed)
    guided: dict[str, int]  # camera -> frames fitted from a reading made by looking again (`_guided_used`)


def run_session(root: Path, views: int | None = None, shape: Path | None = None, pipeline: str | None = None,
                combine: str | None = None, debug: bool = False, progress: Progress | None = None,
                checkpoint: Path | None = None, frames: str | None = None, output: Path | None = None,
                person: int | None = None) -> tuple[FitResult, Path]:
    """Fit the session's main subject (and every other person chosen, `run_people`); the main subject's
    result and the file written (``output``, default :func:`default_output`)."""
    fits, out = run_people(root, views, shape, pipeline, combine, debug, progress, checkpoint, frames, output, person)
    return fits[0].result, out


def run_people(root: Path, views: int | None = None, shape: Path | None = None, pipeline: str | None = None,
               combine: str | None = None, debug: bool = False, progress: Progress | None = None,
               checkpoint: Path | None = None, frames: str | None = None, output: Path | None = None,
               person: int | None = None) -> tuple[list[PersonFit], Path]:
    """Fit every chosen person (the pipeline's updater: keypoints, ReFit, or ReFit then keypoints), each with
    its own betas, into ``output/people/<id>/smpl.npz``; the main subject (first) also into ``output``
    (default :func:`default_output`; and ``output/fit.h5`` with ``debug``). ``shape`` holds the main subject's
    betas. ``frames`` ``"START:STOP"`` fits those frames only (``smpl_frames_START-STOP.npz``); the metadata
    records ``first_frame``, the session frame of the file's frame 0 (`mocap eval --offset START`)."""
    inp = load_inputs(root, views, pipeline, combine, checkpoint, need_checkpoint=True, frames=frames, person=person)
    part = None if frames is None else (inp.first_frame, inp.first_frame + inp.keypoints.num_frames)
    out = Path(output) if output is not None else default_output(inp.root, part)
    check_destination(out, *(person_dir(inp.root, n) / default_output(inp.root, part).name for n in inp.people))
    fits = []
    points = BodyPoints(inp.body, inp.spec)
    for n in inp.people:
        kp, swaps = (inp.keypoints, inp.swaps) if n == inp.people[0] else inp.person(n)
        betas = load_shape(Path(shape), inp.body) if shape is not None and n == inp.people[0] else None
        implausible = implausible_keypoints(kp, inp.rig, points, inp.pipeline.fit)
        # Detections that passed the test between views but not the body: refit without them.
        result, extra, kp, far, dropped = fit_without_far_views(
            lambda *again: _fit_person(inp, *again, betas=betas, progress=progress, debug=debug), kp, inp.rig,
            inp.pipeline.fit.association, lambda r: keypoint_positions(points, r), implausible, in_place=True)
        extra["keypoints_implausible"] = 0 if implausible is None else int(implausible.sum())
        extra["keypoints_far_from_fit"] = dropped
        # the windows' own fits served the refits only (15 MB for 18,000 frames, for every person fitted)
        result = with_association(dataclasses.replace(result, swaps=swaps, raw=None), inp.association, n,
                                  inp.pipeline.fit.min_views, far)
        extra["guided_detections"] = _guided_used(inp.detections, inp.association.slots(n), result)
        meta = _metadata(dataclasses.replace(inp, keypoints=kp, swaps=swaps),
                         {"shape_file": str(shape) if shape and n == inp.people[0] else None, "person": n,
                          "people": list(inp.people), "first_frame": inp.first_frame, **extra})
        seq = fitted_sequence(result, inp.body, meta)
        # Which detection slot of keypoints2d.h5 each view's person was, (F, V), -1 none: for the overlays.
        seq = dataclasses.replace(seq, extra={**seq.extra, "detection_slots": inp.association.slots(n)})
        path = person_dir(inp.root, n) / default_output(inp.root, part).name
        save_sequence(path, seq)
        if n == inp.people[0]:
            save_sequence(out, seq)
            if debug:
                write_diagnostics(inp.root / "output" / "fit.h5", result, meta)
        fits.append(PersonFit(n, result, path, kp, extra["guided_detections"]))
    return fits, out


def _guided_used(det: Detections2D, slots: np.ndarray, result: FitResult) -> dict[str, int]:
    """Camera -> frames whose fit used a reading `mocap detect` made by looking again where the other views put
    the person (`mocap.detect.guided`), for the cameras with any."""
    if det.guided is None:
        return {}
    guided = np.take_along_axis(det.guided, np.clip(slots, 0, None)[..., None], 2)[..., 0] & (slots >= 0)
    counts = (guided & result.views_used).sum(0)
    return {cam: int(c) for cam, c in zip(result.cameras, counts) if c}


def _fit_person(inp: Inputs, kp: Keypoints2D, previous: FitResult | None = None, changed: np.ndarray | None = None,
                *, betas, progress, debug) -> tuple[FitResult, dict]:
    """The person's fit of ``kp``; with ``previous`` (a fit of the same detections but the ``changed``
    frames'), the keypoint updater refits the windows that changed only (`refit_windows`; with ``debug``,
    whose per-iteration record covers every window, the whole take), keeping ``previous``'s shape
    (`mocap.fitting.windows` says why); the learned updater fits the whole take again, its own shape too."""
    if previous is not None and inp.pipeline.updater == "keypoints":
        if not debug:
            from mocap.fitting.windows import refit_windows

            with about(inp.root / "output" / "keypoints2d.h5"):
                return refit_windows(previous, kp, inp.rig, inp.body, inp.spec, inp.pipeline.fit, changed,
                                     progress), {}
        result, extra = _fit_person(inp, kp, betas=previous.betas, progress=progress, debug=debug)
        return dataclasses.replace(result, betas_held=previous.betas_held), extra
    extra, start, result = {}, None, None
    if inp.pipeline.updater != "keypoints":
        from mocap.fitting.refit.session import fit_refit_session

        result, extra["refit"] = fit_refit_session(inp.root, kp, inp.rig, inp.body, inp.spec, inp.pipeline,
                                                   inp.checkpoint, betas, progress, first_frame=inp.first_frame)
        start = result.params
    if inp.pipeline.updater != "refit":
        with about(inp.root / "output" / "keypoints2d.h5"):  # the fit's errors are about these detections
            result = fit_sequence(kp, inp.rig, inp.body, inp.spec, inp.pipeline.fit, betas, progress, debug,
                                  start=start)
    return result, extra


def fitted_sequence(result: FitResult, body: BodyModel, meta: dict) -> SmplSequence:
    """The fit as an AMASS-style sequence; per-frame quality rides along as extra arrays."""
    p = result.params
    quality = {
        "reprojection_error_px": result.error_px.astype(np.float32),  # (F, V)
        "views_used": result.views_used,  # (F, V)
        "flags": result.flags,  # (F,) bit set, names in flag_names
        "flag_names": np.array(json.dumps(FLAGS)),
        "camera_names": np.array(result.cameras),
        "betas_held": np.array(result.betas_held),
    }
    if result.swaps is not None:
        quality["left_right_swaps"] = result.swaps  # (F, V) codes, names in left_right_swap_names
        quality["left_right_swap_names"] = np.array(json.dumps(SWAPS))
    if result.view_reasons is not None:
        quality["view_reasons"] = result.view_reasons  # (F, V) codes, names in view_reason_names
        quality["view_reason_names"] = np.array(json.dumps(VIEW_REASONS))
        quality["person"] = np.int64(result.person)
    poses = by_frames(lambda f: p.index(f).poses().detach().double().numpy(), len(p), np.zeros((0, 72)))
    return SmplSequence(poses=poses, trans=p.transl.detach().double().numpy(),
                        betas=result.betas.detach().double().numpy(), gender=body.gender, fps=result.fps,
                        surface_model=body.name, extra=quality, meta=meta)


def write_diagnostics(path: Path, result: FitResult, meta: dict) -> None:
    """Per-iteration diagnostics: ``error_px`` (T, F, V), ``step`` (T, F), ``spread`` (T, F), plus the final quality."""
    import h5py

    from mocap.io.atomic import atomic_buffer

    with atomic_buffer(path) as buf:
        with h5py.File(buf, "w") as f:
            f.attrs["metadata"] = json.dumps(meta, sort_keys=True, default=str)
            f.attrs["cameras"] = json.dumps(list(result.cameras))
            for k, v in result.diagnostics.items():
                f.create_dataset(f"iterations/{k}", data=v, compression="gzip")
            f.create_dataset("final/error_px", data=result.error_px.astype(np.float32))
            f.create_dataset("final/views_used", data=result.views_used.astype(np.uint8))
            f.create_dataset("final/flags", data=result.flags)


def parse_frames(spec: str, num_frames: int) -> np.ndarray:
    """``"0:60"`` / ``"10:"`` / ``":30"`` -> frame indices, checked against the sequence length."""
    try:
        parts = [int(x) if x else None for x in spec.split(":")]
        if len(parts) != 2:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--frames {spec!r}: expected START:STOP, e.g. 0:60") from None
    frames = np.arange(num_frames)[slice(*parts)]
    if len(frames) == 0:
        raise ConfigError(f"--frames {spec!r} selects no frame of the {num_frames} in the session")
    return frames


def shape_session(root: Path, frames: str, output: Path, views: int | None = None, pipeline: str | None = None,
                  progress: Progress | None = None, person: int | None = None) -> tuple[ShapeResult, Path]:
    """Fit one betas vector to ``frames`` of the session from all views and write it to ``output``: the main
    subject's, or ``person``'s."""
    inp = load_inputs(root, views, pipeline, person=person)
    idx = parse_frames(frames, inp.keypoints.num_frames)
    with about(inp.root / "output" / "keypoints2d.h5"):
        res = fit_shape(inp.keypoints, inp.rig, inp.body, inp.spec, inp.pipeline.fit, idx, progress)
    save_subject(output, SubjectShape(betas=res.betas.double().numpy(), gender=inp.body.gender,
                                      surface_model=inp.body.name, error_px=float(res.error_px), frames=res.frames,
                                      meta=_metadata(inp, {"frames": frames, "person": inp.people[0]})))
    return res, Path(output)
