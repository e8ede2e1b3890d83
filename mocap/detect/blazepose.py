"""MediaPipe BlazePose over one view: every person's 33 keypoints per frame, in pixels of the original image.

Two graphs, both offline with the models inside the mediapipe wheel (model_complexity=1; 0 and 2 would
download their model at run time, so they are refused unless their model file is already installed):
- several people (the default, ``max_people`` > 1): MediaPipe's Tasks PoseLandmarker finds people, and each
  is tracked on a crop by a one-person graph (`mocap.detect.people`, `mocap.detect.tracker`);
- one person (``max_people`` = 1): the legacy ``mediapipe.solutions.pose`` graph in video (tracking) mode,
  the detector mocap used before it found several people.
Both can return each person's segmentation mask, stored cropped to the person (`mocap.detect.masks`).

Frames go to MediaPipe at full resolution: shrinking them first (longer side 960 px, INTER_AREA) saved
2.5 % CPU, within this machine's noise, and moved keypoints by 1.6 px (median) without changing the
cross-view consistency (16.0 against 16.1 px) on the Pose2Sim demo (measured with the legacy graph).
MediaPipe's landmarks are normalised to the image; they are scaled back to pixels here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mocap.keypoint_formats import BLAZEPOSE33
from mocap.errors import ConfigError, InputDataError, MissingDependencyError
from mocap.io.keypoints_h5 import Detections2D
from mocap.io.video import probe, read_frames

FORMAT = "blazepose33"
_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DetectorConfig:
    model_complexity: int = 1
    smooth_landmarks: bool = False  # the legacy one-person graph's landmark filter (its lag costs accuracy, people.CropGraph)
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_people: int = 4  # people per view and frame; 1 = the legacy one-person graph
    masks: bool = True  # each person's segmentation mask into keypoints2d.h5
    mask_size: int = 128  # S: masks are stored S x S
    detect_every: int = 15  # frames between looks for new people (also whenever one is lost)

    def as_meta(self) -> dict:
        import mediapipe

        return {"detector": "mediapipe-blazepose", "detector_version": mediapipe.__version__,
                "graph": "legacy-pose" if self.max_people == 1 else "tasks-finder+legacy-pose-crops",
                "model_complexity": self.model_complexity, "max_people": self.max_people,
                "smooth_landmarks": self.smooth_landmarks, "min_detection_confidence": self.min_detection_confidence,
                "min_tracking_confidence": self.min_tracking_confidence, "masks": self.masks,
                "mask_size": self.mask_size if self.masks else None,
                "detect_every": self.detect_every if self.max_people > 1 else None}


def check_model(complexity: int, max_people: int = 1) -> None:
    """Raise unless the BlazePose model of ``complexity`` is installed (nothing downloads at run time) and
    serves ``max_people``."""
    if max_people < 1:
        raise ConfigError(f"--max-people must be at least 1, not {max_people}")
    if complexity not in _MODEL_FILES:
        raise ConfigError(f"model_complexity must be 0, 1 or 2, not {complexity}")
    if complexity != 1 and max_people != 1:
        raise ConfigError(f"model_complexity {complexity} is for one person (--max-people 1); several people "
                          "are found with the model of complexity 1")
    try:
        import mediapipe
    except ImportError:
        raise MissingDependencyError("mediapipe is not installed; pip install mediapipe==0.10.21") from None
    model = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[complexity]
    if not model.is_file():
        raise ConfigError(f"model_complexity {complexity} needs {model.name}, which mediapipe downloads at run "
                          "time and this install lacks (offline); use --complexity 1, whose model ships with mediapipe")


def source_fingerprint(path: Path) -> dict:
    """Identify a video cheaply: size plus a hash of its first and last MiB (image folder: names and sizes).

    Hashing whole videos would cost seconds per GiB on every run; the ends change whenever the
    content is re-encoded or trimmed. The mtime is recorded but not compared (copies change it).
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        for f in files:
            digest.update(f"{f.name}:{f.stat().st_size};".encode())
    else:
        files = [path]
        with open(path, "rb") as fh:
            digest.update(fh.read(1 << 20))
            if path.stat().st_size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return {"source": str(path.resolve()), "source_size": sum(f.stat().st_size for f in files),
            "source_sha256_ends": digest.hexdigest(),
            "source_mtime": max((f.stat().st_mtime for f in files), default=None)}


_quiet_lock = threading.Lock()
_quiet_users = 0
_saved_stderr = -1


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 while MediaPipe graphs live: their C++ threads print start-up notices (TFLite
    delegate, feedback tensors, ROI projection) that are not ours to show and break the progress bars.
    Python errors still propagate as exceptions. File descriptors belong to the process, so views detected
    in parallel threads share one redirection: the first to enter makes it, the last to leave undoes it."""
    global _quiet_users, _saved_stderr
    with _quiet_lock:
        if _quiet_users == 0:
            sys.stderr.flush()
            _saved_stderr = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _quiet_users += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_users -= 1
            if _quiet_users == 0:
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)


# One frame's reading: keypoints (P, 33, 3), scores (P,), per person (mask map, frame box it covers), slots (P,).
Frame = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, list, np.ndarray]]


def detect_video(path: str | os.PathLike, camera: str, config: DetectorConfig = DetectorConfig(),
                 stop: int | None = None, progress: Progress | None = None) -> Detections2D:
    """BlazePose on frames ``0 .. stop-1`` (all when None) of one video or image folder; InputDataError when
    the source has fewer frames.

    Returns one view with P slots (the most people found in one frame, at least 1): keypoints
    ``(F, 1, P, 33, 3)`` (pixel x, pixel y, visibility), boxes ``(F, 1, P, 4)`` (x0, y0, x1, y1: the bounds
    of the 33 landmarks, which MediaPipe predicts for the whole body, even out of the image), scores
    ``(F, 1, P)`` (mean visibility of the landmarks), and with ``config.masks`` masks ``(F, 1, P, S, S)``.
    An empty slot is NaN; slots carry no identity across frames.
    """
    import mediapipe as mp

    check_model(config.model_complexity, config.max_people)
    path = Path(path)
    info = probe(path, exact=False)  # the header's count, checked below by decoding every frame
    F = info.frames if stop is None else stop
    W, H = info.width, info.height
    with quiet_stderr():
        if config.max_people == 1:
            graph = mp.solutions.pose.Pose(
                static_image_mode=False, model_complexity=config.model_complexity,
                smooth_landmarks=config.smooth_landmarks, enable_segmentation=config.masks,
                min_detection_confidence=config.min_detection_confidence,
                min_tracking_confidence=config.min_tracking_confidence)
            frame_fn = _legacy_frame(graph, W, H)
        else:
            from mocap.detect.tracker import PeopleTracker

            graph = frame_fn = PeopleTracker((W, H), config.max_people, config.masks,
                                             config.min_detection_confidence, config.min_tracking_confidence,
                                             config.detect_every)
        with graph:
            per_frame = []
            # Decoding and the RGB conversion run in read_frames' thread, beside MediaPipe.
            for f, frame in enumerate(read_frames(path, 0, stop, prefetch=4, rgb=True)):
                if f >= F:
                    raise InputDataError(f"{path}: the container says {F} frames but more decode; rewrite its header "
                                         "(ffmpeg -i IN -c copy OUT) so that every stage counts the same frames")
                if frame.shape[:2] != (H, W):
                    raise InputDataError(f"{path}: frame {f} is {frame.shape[1]}x{frame.shape[0]}, the first {W}x{H}")
                per_frame.append(_people(*frame_fn(frame, f), config))
                if progress is not None:
                    progress(f + 1, F)
    if len(per_frame) < F:
        raise InputDataError(f"{path}: the container says {F} frames but {len(per_frame)} decode (truncated file, or a "
                             "wrong header: rewrite it with ffmpeg -i IN -c copy OUT)")
    meta = config.as_meta()
    det = _stack(per_frame, camera, (W, H), info.fps or float("nan"), meta, config)
    rate = float(det.present.any(axis=2).mean()) if F else 0.0
    view_meta = {**meta, **source_fingerprint(path), "frames": F, "detection_rate": rate,
                 "max_people_found": int(det.present.sum(axis=2).max(initial=0))}
    return dataclasses.replace(det, view_meta=(view_meta,))


def _legacy_frame(pose, W: int, H: int) -> Frame:
    """The legacy graph's reading of one frame (`Frame`; P <= 1, its mask covers the whole frame)."""
    def run(frame: np.ndarray, f: int):
        result = pose.process(frame)
        if result.pose_landmarks is None:
            return np.zeros((0, len(BLAZEPOSE33), 3)), np.zeros(0), [], np.zeros(0, int)
        # MediaPipe's normalised coordinates span the image edge to edge; ours put pixel centres at integers.
        kp = np.array([[(p.x * W - 0.5, p.y * H - 0.5, p.visibility) for p in result.pose_landmarks.landmark]])
        maps = [(result.segmentation_mask, None)] if result.segmentation_mask is not None else []
        return kp, kp[..., 2].mean(-1), maps, np.zeros(1, int)

    return run


def _people(kp: np.ndarray, scores: np.ndarray, maps: list, slots: np.ndarray, config: DetectorConfig):
    """One frame's people after duplicates are dropped: keypoints, scores, slots, masks and mask boxes (or None)."""
    from mocap.detect.masks import person_masks
    from mocap.detect.people import duplicates

    keep = duplicates(kp, scores) if len(kp) > 1 else np.ones(len(kp), bool)
    kp, scores, slots = kp[keep], scores[keep], np.asarray(slots)[keep]
    if not config.masks:
        return kp, scores, slots, None, None
    masks, boxes = person_masks([m for m, k in zip(maps, keep) if k], kp, config.mask_size)
    return kp, scores, slots, masks, boxes


def _stack(per_frame: list, camera: str, size: tuple[int, int], fps: float, meta: dict,
           config: DetectorConfig) -> Detections2D:
    """Frames' people into one view's Detections2D at their slots; P = the highest slot used + 1 (at least 1)."""
    F, K, S = len(per_frame), len(BLAZEPOSE33), config.mask_size
    P = max([int(p[2].max()) + 1 for p in per_frame if len(p[2])] + [1])
    keypoints = np.full((F, 1, P, K, 3), np.nan, np.float32)
    scores = np.full((F, 1, P), np.nan, np.float32)
    masks = np.zeros((F, 1, P, S, S), np.uint8) if config.masks else None
    mask_boxes = np.full((F, 1, P, 4), np.nan, np.float32) if config.masks else None
    for f, (kp, sc, slots, m, mb) in enumerate(per_frame):
        keypoints[f, 0, slots], scores[f, 0, slots] = kp, sc
        if masks is not None:
            masks[f, 0, slots], mask_boxes[f, 0, slots] = m, mb
    boxes = np.concatenate([keypoints[..., :2].min(-2), keypoints[..., :2].max(-2)], axis=-1)
    return Detections2D(cameras=(camera,), keypoints=keypoints, boxes=boxes, scores=scores, image_sizes=[list(size)],
                        format=FORMAT, names=BLAZEPOSE33, fps=fps, meta=meta, masks=masks, mask_boxes=mask_boxes)
