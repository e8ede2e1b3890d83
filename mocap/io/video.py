"""The project's one video reader: video files (mp4/avi/mov/mkv) and image folders, through OpenCV.

Frames are BGR uint8 ``(H, W, 3)`` as OpenCV gives them. A source is addressed by frame index; an image
folder's frames are its images in natural (numeric-aware) name order.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mocap.errors import InputDataError

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    kind: str  # "video" or "images"
    frames: int
    fps: float | None  # None for image folders
    width: int
    height: int


def _natural_key(p: Path):
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.name)]


def list_images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size of a video file or image folder, or InputDataError naming the file."""
    import cv2

    path = Path(path)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise InputDataError(f"{path}: image folder holds no {'/'.join(IMAGE_EXTS)} files")
        first = cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED)
        if first is None:
            raise InputDataError(f"{images[0]}: unreadable image")
        return VideoInfo(path, "images", len(images), None, first.shape[1], first.shape[0])
    if not path.is_file():
        raise InputDataError(f"{path}: video not found")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputDataError(f"{path}: unreadable video (OpenCV cannot open it)")
        frames = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        ok, _ = cap.read()
    finally:
        cap.release()
    if not ok or frames <= 0 or w <= 0:
        raise InputDataError(f"{path}: unreadable video (no decodable frame)")
    return VideoInfo(path, "video", frames, fps if fps > 0 else None, w, h)


def read_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield BGR frames ``start .. stop-1`` of a video file or image folder."""
    import cv2

    path = Path(path)
    if path.is_dir():
        for img in list_images(path)[start:stop]:
            frame = cv2.imread(str(img), cv2.IMREAD_COLOR)
            if frame is None:
                raise InputDataError(f"{img}: unreadable image")
            yield frame
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputDataError(f"{path}: unreadable video")
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        index = start
        while stop is None or index < stop:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
            index += 1
    finally:
        cap.release()
