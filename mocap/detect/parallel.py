"""Run the detector over several views at once, one thread per view.

Threads, not processes: MediaPipe's graph and OpenCV's decoder do their work without the GIL (4 views in
4 threads keep both cores busy), and threads spare each process its interpreter start, imports and graph
set-up (about 1 s per process). On the Pose2Sim demo (4 views x 100 frames, 2 cores) spawned processes
took 3.4x one view's time; threads take 2.5-2.9x (benchmarks/detection.py; the spread is this machine's
noise). Much below that is out of reach: one view alone keeps about 1.3 cores busy (decoding and colour
conversion run beside MediaPipe), so 4 views need at least 2 x 1.3 = 2.6x its time on 2 cores.

As many views run at once as there are usable cores: running all 4 at once was no faster on 2 cores
(medians of five sets of runs: 7.2 s against 7.0 s), and with fewer at once the first views finish, and
are saved, sooner. Each view's result is handed to ``on_view`` in the calling thread as soon as that view
finishes, so a caller can save it before the others end. An exception or Ctrl-C in any thread stops the
others at their next frame.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from mocap.detect.blazepose import DetectorConfig, detect_video
from mocap.io.keypoints_h5 import Detections2D

ViewProgress = Callable[[str, int, int], None]  # camera, frames done, frames total


class _Cancelled(Exception):
    """Raised inside a view's thread when the run is being abandoned."""


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def detect_views(sources: Mapping[str, Path], config: DetectorConfig = DetectorConfig(), *,
                 stop: int | None = None, workers: int | None = None, progress: ViewProgress | None = None,
                 on_view: Callable[[Detections2D], None] | None = None) -> dict[str, Detections2D]:
    """Detect every view of ``sources`` (camera -> video or image folder); returns camera -> one-view Detections2D.

    ``workers``: views detected at once (default: the usable cores). ``progress`` and ``on_view`` are
    called in the calling thread.
    """
    import mediapipe  # noqa: F401  -- imported once here, not raced by the worker threads

    workers = max(1, min(workers or usable_cores(), len(sources)))
    reports: queue.SimpleQueue = queue.SimpleQueue()
    cancel = threading.Event()
    results: dict[str, Detections2D] = {}

    def detect_one(camera: str, path: Path) -> Detections2D:
        def report(done: int, total: int) -> None:
            if cancel.is_set():
                raise _Cancelled
            reports.put((camera, done, total))

        return detect_video(path, camera, config, stop, report)

    def drain() -> None:
        while True:
            try:
                camera, done, total = reports.get_nowait()
            except queue.Empty:
                return
            if progress is not None:
                progress(camera, done, total)

    with ThreadPoolExecutor(workers, thread_name_prefix="detect") as pool:
        pending = {pool.submit(detect_one, cam, Path(p)) for cam, p in sources.items()}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                drain()
                # Views that finished are handed over before a failed one raises, so that they are kept.
                for future in sorted(done, key=lambda f: f.exception() is not None):
                    kp = future.result()
                    results[kp.cameras[0]] = kp
                    if on_view is not None:
                        on_view(kp)
            drain()
        except BaseException:
            cancel.set()  # the pool's exit then waits only for the frame each thread is on
            for future in pending:
                future.cancel()
            raise
    return results


def combine(views: Mapping[str, Detections2D], cameras: Sequence[str]) -> Detections2D:
    """One-view results of `detect_views` as one Detections2D of the views ``cameras``, in that order; the
    slots padded to the most any view has."""
    per = [views[c] for c in cameras]
    P = max(v.num_slots for v in per)

    def pad(arr, fill):
        extra = P - arr.shape[2]
        return arr if not extra else np.concatenate([arr, np.full((*arr.shape[:2], extra, *arr.shape[3:]), fill, arr.dtype)], 2)

    cat = lambda key, fill: np.concatenate([pad(getattr(v, key), fill) for v in per], 1)  # noqa: E731
    masks = all(v.masks is not None for v in per)
    return Detections2D(tuple(cameras), cat("keypoints", np.nan), cat("boxes", np.nan), cat("scores", np.nan),
                        np.concatenate([v.image_sizes for v in per]), per[0].format, per[0].names, per[0].fps,
                        dict(per[0].meta), tuple(v.view_meta[0] for v in per),
                        cat("masks", 0) if masks else None, cat("mask_boxes", np.nan) if masks else None)
