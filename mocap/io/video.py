"""The project's one video reader: video files (mp4/avi/mov/mkv) and image folders, through OpenCV.

Frames are BGR uint8 ``(H, W, 3)`` as OpenCV gives them. A source is addressed by frame index; an image
folder's frames are its images in natural (numeric-aware) name order.

Exactness: a container's frame count is a header field that some encoders get wrong, so `probe` checks
it by decoding the last frame (one seek) and falls back to counting frames when the check fails.
`read_frames` seeks by frame index and verifies where the decoder landed, else reads forward from the
start; it raises rather than yield fewer frames than asked, so frame f is always the same instant.
"""

from __future__ import annotations

import os
import queue
import re
import threading
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


def _open(path: Path):
    import cv2

    # One decoding thread: FFmpeg's default (one per core) decoded the 1080x1920 demo at 83 fps against 144 fps
    # for one thread, and it competes with the detector and the other views' processes for the same cores.
    cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    if not cap.isOpened():
        cap.release()
        raise InputDataError(f"{path}: unreadable video (OpenCV cannot open it)")
    return cap


def _seek(cap, path: Path, index: int):
    """Position ``cap`` so that the next read returns frame ``index``; returns the (maybe reopened) capture."""
    import cv2

    if index == 0:
        return cap
    if cap.set(cv2.CAP_PROP_POS_FRAMES, index) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == index:
        return cap
    # The backend could not seek exactly: decode forward from the first frame instead.
    cap.release()
    cap = _open(path)
    for _ in range(index):
        if not cap.grab():
            break
    return cap


def _count_frames(path: Path) -> int:
    cap = _open(path)
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def probe(path: str | os.PathLike, exact: bool = True) -> VideoInfo:
    """Frame count, fps and size of a video file or image folder, or InputDataError naming the file.

    ``exact=False`` takes a video's frame count from its header instead of checking it by decoding to the
    last frame (which on a short clip decodes all of it: 0.3-0.5 s for 100 frames of 1080p). For callers
    that name the frames they read: `read_frames` raises when the source is shorter.
    """
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
    cap = _open(path)
    try:
        frames = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        ok, first = cap.read()
        if not ok:
            raise InputDataError(f"{path}: unreadable video (no decodable frame)")
        h, w = first.shape[:2]
        checked = frames > 0 and not exact
        if frames > 0 and exact:
            cap = _seek(cap, path, frames - 1)
            checked = cap.grab() and not cap.grab()
    finally:
        cap.release()
    if not checked:
        frames = _count_frames(path)
    return VideoInfo(path, "video", frames, fps if fps > 0 else None, w, h)


def _prefetched(frames: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """Decode in a background thread (OpenCV releases the GIL) so decoding overlaps the consumer's work."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        q.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer, re-raised there
            q.put(e)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def read_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None,
                prefetch: int = 0, rgb: bool = False) -> Iterator[np.ndarray]:
    """Yield BGR frames ``start .. stop-1`` (to the end when ``stop`` is None) of a video file or image folder.

    ``prefetch > 0`` decodes up to that many frames ahead in a thread. ``rgb`` yields RGB frames instead,
    converted where they are decoded (in that thread when prefetching). Raises InputDataError when the
    source ends before ``stop``.
    """
    frames = _read(Path(path), start, stop)
    if rgb:
        frames = map(_to_rgb, frames)
    return _prefetched(frames, prefetch) if prefetch > 0 else frames


def read_frames_resized(path: str | os.PathLike, size: tuple[int, int], start: int = 0, stop: int | None = None,
                        preview: bool = False) -> Iterator[np.ndarray]:
    """BGR frames ``start .. stop-1`` of a video file or image folder, resized to ``size`` (w, h) with area averaging.

    Videos read from their first frame decode through PyAV when it is installed (a later start seeks
    through OpenCV, as :func:`read_frames`): the frame is scaled in its YUV planes and converted to
    BGR at the output size, which on 1080x1920 footage halved to 540x960 took 15 % less CPU than OpenCV's
    full-size conversion. ``preview`` also skips H.264's deblocking filter (another 10 %; its blocks are
    below a pixel once the frame is halved) and allows FFmpeg's non-conforming shortcuts (``flags2 fast``):
    for overlays, never for measurement. Raises InputDataError when
    the source ends before ``stop``.
    """
    import cv2

    path = Path(path)
    try:
        import av
    except ImportError:
        av = None
    if av is None or path.is_dir() or start > 0:
        for frame in _read(path, start, stop):
            yield frame if frame.shape[1::-1] == tuple(size) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        return
    yield from _read_av(av, path, size, stop, preview)


def _read_av(av, path: Path, size: tuple[int, int], stop: int | None, preview: bool) -> Iterator[np.ndarray]:
    import cv2

    w, h = size
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise InputDataError(f"{path}: unreadable video ({e})") from None
    index = 0
    try:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # as in _open: the views are decoded side by side
        if preview:  # "fast" decoded the sample's frames bit for bit, 9 % sooner
            stream.codec_context.options = {"skip_loop_filter": "all", "flags2": "+fast"}
        for frame in container.decode(stream):
            if stop is not None and index >= stop:
                return
            fw, fh = frame.width, frame.height
            if frame.format.name == "yuv420p" and fw % 2 == 0 and fh % 2 == 0 and w % 2 == 0 and h % 2 == 0:
                out = np.empty(h * w * 3 // 2, np.uint8)  # I420: Y, then U and V at half size
                ends = (0, h * w, h * w * 5 // 4, h * w * 3 // 2)
                for i, plane in enumerate(frame.planes):  # read in place, rows padded to line_size
                    src = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
                    pw, ph = (w, h) if i == 0 else (w // 2, h // 2)
                    cv2.resize(src, (pw, ph), dst=out[ends[i]:ends[i + 1]].reshape(ph, pw), interpolation=cv2.INTER_AREA)
                yield cv2.cvtColor(out.reshape(h * 3 // 2, w), cv2.COLOR_YUV2BGR_I420)
            else:
                yield cv2.resize(frame.to_ndarray(format="bgr24"), (w, h), interpolation=cv2.INTER_AREA)
            index += 1
    except av.error.FFmpegError as e:
        raise InputDataError(f"{path}: undecodable video at frame {index} ({e})") from None
    finally:
        container.close()
    if stop is not None and index < stop:
        raise InputDataError(f"{path}: video ends at frame {index}, frames up to {stop} asked for "
                             "(truncated or corrupt file?)")


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)


def _read(path: Path, start: int, stop: int | None) -> Iterator[np.ndarray]:
    import cv2

    if path.is_dir():
        images = list_images(path)
        if stop is not None and stop > len(images):
            raise InputDataError(f"{path}: {len(images)} images, frames up to {stop} asked for")
        for img in images[start:stop]:
            frame = cv2.imread(str(img), cv2.IMREAD_COLOR)
            if frame is None:
                raise InputDataError(f"{img}: unreadable image")
            yield frame
        return
    cap = _seek(_open(path), path, start)
    try:
        index = start
        while stop is None or index < stop:
            ok, frame = cap.read()
            if not ok:
                if stop is not None:
                    raise InputDataError(f"{path}: video ends at frame {index}, frames up to {stop} asked for "
                                         "(truncated or corrupt file?)")
                break
            yield frame
            index += 1
    finally:
        cap.release()
