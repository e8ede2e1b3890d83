"""MediaPipe BlazePose over one view: 33 keypoints per frame, in pixels of the original image.

Uses the legacy ``mediapipe.solutions.pose`` graph in video (tracking) mode. Only model_complexity=1 ships
inside the mediapipe wheel; 0 and 2 would download their model at run time, so they are refused unless
their model file is already installed.

Frames go to MediaPipe at full resolution: shrinking them first (longer side 960 px, INTER_AREA) saved
2.5 % CPU, within this machine's noise, and moved keypoints by 1.6 px (median) without changing the
cross-view consistency (16.0 against 16.1 px) on the Pose2Sim demo.
MediaPipe's landmarks are normalised to the image; they are scaled back to pixels here.
"""

from __future__ import annotations

import contextlib
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
from mocap.io.keypoints_h5 import Keypoints2D
from mocap.io.video import probe, read_frames

FORMAT = "blazepose33"
_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DetectorConfig:
    model_complexity: int = 1
    smooth_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def as_meta(self) -> dict:
        import mediapipe

        return {"detector": "mediapipe-blazepose", "detector_version": mediapipe.__version__,
                "model_complexity": self.model_complexity,
                "smooth_landmarks": self.smooth_landmarks, "min_detection_confidence": self.min_detection_confidence,
                "min_tracking_confidence": self.min_tracking_confidence}


def check_model(complexity: int) -> None:
    """Raise unless the BlazePose model of ``complexity`` is installed (nothing downloads at run time)."""
    if complexity not in _MODEL_FILES:
        raise ConfigError(f"model_complexity must be 0, 1 or 2, not {complexity}")
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
def _quiet_stderr():
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


def detect_video(path: str | os.PathLike, camera: str, config: DetectorConfig = DetectorConfig(),
                 stop: int | None = None, progress: Progress | None = None) -> Keypoints2D:
    """BlazePose on frames ``0 .. stop-1`` (all when None) of one video or image folder; InputDataError when
    the source has fewer frames.

    Returns one view: keypoints ``(F, 1, 33, 3)`` (pixel x, pixel y, visibility), boxes ``(F, 1, 4)``
    (x0, y0, x1, y1: the bounds of the 33 landmarks, which MediaPipe predicts for the whole body, even
    out of the image), detected ``(F, 1)``. A frame without a person is NaN with detected False.
    """
    import mediapipe as mp

    check_model(config.model_complexity)
    path = Path(path)
    info = probe(path, exact=stop is None)
    F = info.frames if stop is None else stop
    W, H = info.width, info.height
    keypoints = np.full((F, len(BLAZEPOSE33), 3), np.nan, np.float32)
    detected = np.zeros(F, bool)
    with _quiet_stderr(), mp.solutions.pose.Pose(
            static_image_mode=False, model_complexity=config.model_complexity,
            smooth_landmarks=config.smooth_landmarks, enable_segmentation=False,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence) as pose:
        # Decoding and the RGB conversion run in read_frames' thread, beside MediaPipe.
        for f, frame in enumerate(read_frames(path, 0, F, prefetch=4, rgb=True)):
            if frame.shape[:2] != (H, W):
                raise InputDataError(f"{path}: frame {f} is {frame.shape[1]}x{frame.shape[0]}, the first {W}x{H}")
            result = pose.process(frame)
            if result.pose_landmarks is not None:
                lm = result.pose_landmarks.landmark
                keypoints[f] = [(p.x * W, p.y * H, p.visibility) for p in lm]
                detected[f] = True
            if progress is not None:
                progress(f + 1, F)
    boxes = np.concatenate([keypoints[:, :, :2].min(1), keypoints[:, :, :2].max(1)], axis=1)
    meta = config.as_meta()
    return Keypoints2D(
        cameras=(camera,), keypoints=keypoints[:, None], boxes=boxes[:, None], detected=detected[:, None],
        image_sizes=[[W, H]], format=FORMAT, names=BLAZEPOSE33, fps=info.fps or float("nan"), meta=meta,
        view_meta=({**meta, **source_fingerprint(path), "frames": F, "detection_rate": float(detected.mean()) if F else 0.0},),
    )
