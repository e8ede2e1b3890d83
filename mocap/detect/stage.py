"""The detect stage: BlazePose keypoints (and masks) of every person in every view of a session into ``output/keypoints2d.h5``.

Each view is written into the file as soon as it finishes (the whole file is rewritten to a temporary
file and renamed), so an interrupted run keeps the views done and never leaves a half-written file.
A view already in the file is skipped when it was detected from the same footage with the same
detector settings, unless ``force``.

Then, when the session is calibrated and several people are detected, every view is looked at again where
the other views put a person its detector missed (`mocap.fitting.missed` says where, `mocap.detect.guided`
reads there); those readings are flagged ``guided`` in the file and redone whenever a view is detected again.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from mocap.detect.blazepose import FORMAT, DetectorConfig, check_model, source_fingerprint
from mocap.detect.parallel import ViewProgress, detect_views
from mocap.errors import InputDataError, MocapWarning
from mocap.io.keypoints_h5 import Detections2D, merge_views, read_detections, read_view_meta, write_keypoints
from mocap.session import Session

# View metadata that must match for a view to count as done (mtime and rates may differ).
_IDENTITY = ("source_size", "source_sha256_ends", "frames")


@dataclass(frozen=True)
class DetectResult:
    path: str
    detected: tuple[str, ...]  # cameras run now
    skipped: tuple[str, ...]  # cameras already done
    detection_rate: dict[str, float]  # camera -> fraction of frames with a person, for the cameras run now
    people: dict[str, tuple[float, int]]  # camera -> (mean, most) people per frame, for the cameras run now
    guided: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    # camera -> (places looked at again, people found there), when the views were looked at again now


def detect_session(session: Session, cameras: Sequence[str] | None = None, *, force: bool = False,
                   config: DetectorConfig = DetectorConfig(), workers: int | None = None,
                   progress: ViewProgress | None = None, guided: bool = True) -> DetectResult:
    """Detect the views ``cameras`` (default: all) of ``session`` that are not done yet (all when ``force``);
    then, with ``guided``, look again for the people views missed (several-people detection only)."""
    check_model(config.model_complexity, config.max_people)
    cameras = list(cameras) if cameras else list(session.cameras)
    unknown = [c for c in cameras if c not in session.cameras]
    if unknown:
        raise InputDataError(f"{session.root}: no camera {', '.join(unknown)}; cameras: {', '.join(session.cameras)}")
    session.require_fps()
    for note in session.check_calibration():
        warnings.warn(note, MocapWarning, stacklevel=2)
    out = session.output("keypoints")
    fmt, done_meta = read_view_meta(out)
    if fmt not in (None, FORMAT) and not force:
        raise InputDataError(f"{out}: holds {fmt} keypoints (imported?); rerun with --force to replace them "
                             "with BlazePose detections")
    wanted = config.as_meta()
    sources = {v.camera: v.info.path for v in session.views if v.camera in cameras}
    todo, skipped = {}, []
    for cam, path in sources.items():
        meta = done_meta.get(cam) if fmt == FORMAT else None
        current = {**source_fingerprint(path), "frames": session.num_frames}
        if (not force and meta is not None and all(meta.get(k) == v for k, v in wanted.items())
                and all(meta.get(k) == current[k] for k in _IDENTITY)):
            skipped.append(cam)
        else:
            todo[cam] = path
    # The first view written replaces a file of another format, or one that is not readable HDF5 (never
    # ours: we write atomically).
    replace = fmt != FORMAT

    def save(kp: Detections2D) -> None:
        nonlocal replace
        kp = dataclasses.replace(kp, fps=session.fps or float("nan"))  # session.yaml may override the videos' rate
        if replace:
            write_keypoints(out, kp)
            replace = False
        else:
            merge_views(out, kp)

    results = detect_views(todo, config, stop=session.num_frames, workers=workers, progress=progress, on_view=save)
    found = {cam: results[cam].present[:, 0] for cam in todo}  # (F, P)
    rates = {cam: float(p.any(axis=1).mean()) if len(p) else 0.0 for cam, p in found.items()}
    people = {cam: (float(p.sum(axis=1).mean()) if len(p) else 0.0, int(p.sum(axis=1).max(initial=0)))
              for cam, p in found.items()}
    looked = {}
    if (guided and config.max_people > 1 and session.calibration_path.is_file()
            and any("guided" not in m for m in read_view_meta(out)[1].values())):
        looked = _look_again(out, sources, session.root, config)
    return DetectResult(str(out), tuple(todo), tuple(skipped), rates, people, looked)


def _look_again(out: Path, sources: Mapping[str, Path], root: Path, config: DetectorConfig) -> dict[str, tuple[int, int]]:
    """Add to the file at ``out`` the people its views missed; camera -> (places looked at, people found)."""
    from mocap.detect.guided import Look, look_again, with_readings, without_guided
    from mocap.fitting.missed import session_misses  # the association of the fitting stage knows who is where

    det = found = without_guided(read_detections(out))
    misses = session_misses(root, found)
    counts, view_meta = {}, list(det.view_meta)
    for v, cam in enumerate(det.cameras):
        looks = [Look(m.frame, m.expected, found.keypoints[m.frame, v][found.present[m.frame, v]])
                 for m in misses if m.view == v]
        readings = look_again(sources[cam], looks, config.masks, config.min_detection_confidence) if cam in sources else []
        det = with_readings(det, v, readings)
        counts[cam] = (len(looks), len(readings))
        view_meta[v] = {**view_meta[v], "guided": {"looked": len(looks), "found": len(readings)}}
    write_keypoints(out, dataclasses.replace(det, view_meta=tuple(view_meta)))
    return counts
