"""MediaPipe's BlazePose graphs for several people, and telling two readings of one person apart.

The models are the two that ship inside the mediapipe wheel (``modules/pose_detection/pose_detection.tflite``,
``modules/pose_landmark/pose_landmark_full.tflite``), run by MediaPipe's own Tasks ``PoseLandmarker``: the
SSD person detector (anchor decoding, non-maximum suppression, the ROI rotated by the hip-centre to
shoulder keypoints), the landmark model on each person's ROI, to find people; each person found is then
tracked on a crop around them by `CropGraph` (the legacy graph, whose landmarks give the next frame's ROI).
`mocap.detect.tracker` drives these graphs for several people.
The Tasks API wants a model bundle whose models carry TFLite metadata
(the input's normalisation); the wheel's models carry none, so `model_bundle` writes it with the wheel's
own metadata writer, in memory (nothing is downloaded or written to disk). The normalisation is the
legacy graphs': the detector takes RGB in [-1, 1], the landmark model RGB in [0, 1].

Two landmark sets on one person (a re-detection beside a tracked person) are told apart by `duplicates`.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from mocap.detect.crops import box_from_keypoints
from mocap.errors import MissingDependencyError

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def model_bundle() -> bytes:
    """The ``.task`` bundle (a zip of the two models with their input metadata) for PoseLandmarker."""
    import io
    import zipfile

    try:
        import mediapipe
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils
    except ImportError:
        raise MissingDependencyError("mediapipe is not installed; pip install mediapipe==0.10.21") from None
    modules = Path(mediapipe.__file__).parent / "modules"

    def with_metadata(path: Path, mean: float, std: float) -> bytes:
        model = bytearray(path.read_bytes())
        writer = metadata_writer.MetadataWriter.create(model).add_general_info(path.stem).add_image_input([mean], [std])
        for _ in writer_utils.get_output_tensor_types(model):
            writer.add_feature_output()
        return bytes(writer.populate()[0])

    buf = io.BytesIO()
    # Uncompressed members: MediaPipe maps them in place (as its own bundle writer does).
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("pose_detector.tflite", with_metadata(modules / "pose_detection" / "pose_detection.tflite", 127.5, 127.5))
        zf.writestr("pose_landmarks_detector.tflite",
                    with_metadata(modules / "pose_landmark" / "pose_landmark_full.tflite", 0.0, 255.0))
    return buf.getvalue()


def landmarker(num_poses: int, masks: bool, min_detection: float, min_tracking: float):
    """An image-mode PoseLandmarker (finding people in a still frame); close it when done."""
    from mediapipe.tasks.python import BaseOptions, vision

    with _lock:  # the bundle is built once, not raced by the views' threads
        bundle = model_bundle()
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_buffer=bundle), running_mode=vision.RunningMode.IMAGE,
        num_poses=num_poses, output_segmentation_masks=masks, min_pose_detection_confidence=min_detection,
        min_pose_presence_confidence=min_detection, min_tracking_confidence=min_tracking)
    return vision.PoseLandmarker.create_from_options(options)


class CropGraph:
    """One person's BlazePose on crops around them: the legacy ``solutions.pose`` graph in tracking mode (each
    frame's ROI from the last landmarks, the detector only when the person is lost) with its landmark filter off.

    Not PoseLandmarker: in video mode it always filters a single person's landmarks, and the filter's lag makes
    the views disagree. On the Pose2Sim sample, leave-one-view-out error was 27.6 px with PoseLandmarker on the
    crops and 25.6 px with this graph (the same fit, silhouettes off); the fit's temporal prior smooths in 3D
    instead, without lag. ``static``: every crop on its own (the detector runs on each), for crops of
    unrelated frames (`mocap.detect.guided`)."""

    def __init__(self, masks: bool, min_detection: float, min_tracking: float, complexity: int = 1,
                 static: bool = False):
        try:
            import mediapipe as mp
        except ImportError:
            raise MissingDependencyError("mediapipe is not installed; pip install mediapipe==0.10.21") from None
        self.masks = masks
        self.pose = mp.solutions.pose.Pose(static_image_mode=static, model_complexity=complexity, smooth_landmarks=False,
                                           enable_segmentation=masks, smooth_segmentation=False,
                                           min_detection_confidence=min_detection, min_tracking_confidence=min_tracking)

    def __call__(self, crop: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """RGB crop ``(S, S, 3)`` uint8 -> landmarks ``(33, 3)`` (x, y normalised to the crop, visibility) or None
        when the person is lost, and their mask ``(S, S)`` float in [0, 1] (None without masks)."""
        result = self.pose.process(crop)
        if result.pose_landmarks is None:
            return None, None
        kp = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
        mask = result.segmentation_mask if self.masks else None
        return kp, None if mask is None else np.asarray(mask, dtype=np.float32)

    def close(self) -> None:
        self.pose.close()


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union ``(N, M)`` of boxes ``(N, 4)`` and ``(M, 4)`` (x0, y0, x1, y1)."""
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(inter / (area(a) + area(b) - inter))


def duplicates(keypoints: np.ndarray, scores: np.ndarray, max_offset: float = 0.1, max_iou: float = 0.7) -> np.ndarray:
    """Keep-mask ``(P,)`` over P landmark sets ``(P, K, 3)`` of one frame: greedy, best score first, a set is
    dropped as a second reading of a kept person when their keypoints lie closer than ``max_offset`` x the
    kept box's diagonal (median over the keypoints both see with confidence >= 0.5), or, sharing no such
    keypoint, when their boxes overlap by IoU > ``max_iou``. Boxes alone would merge a person standing in
    front of another; their keypoints stay apart."""
    kp = np.asarray(keypoints, dtype=np.float64)
    boxes = box_from_keypoints(kp, 0.0)
    order = np.argsort(-np.nan_to_num(np.asarray(scores, float), nan=-np.inf), kind="stable")
    keep = np.zeros(len(kp), bool)
    for i in order:
        if not np.isfinite(boxes[i]).all():
            continue
        keep[i] = not any(same_person(kp[i], kp[j], boxes[i], boxes[j], max_offset, max_iou) for j in np.nonzero(keep)[0])
    return keep


def same_person(a: np.ndarray, b: np.ndarray, box_a: np.ndarray, box_b: np.ndarray, max_offset: float,
                 max_iou: float) -> bool:
    both = (a[:, 2] >= 0.5) & (b[:, 2] >= 0.5)
    if not both.any():
        return bool(iou(box_a[None], box_b[None])[0, 0] > max_iou)
    diag = np.hypot(box_b[2] - box_b[0], box_b[3] - box_b[1])
    return bool(np.median(np.linalg.norm(a[both, :2] - b[both, :2], axis=-1)) < max_offset * diag)

