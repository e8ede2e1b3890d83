"""Run the detector over several views, one process per view, at most as many processes as usable cores.

Processes rather than threads because MediaPipe's graph holds the GIL for much of its work. Workers are
spawned (not forked) so no MediaPipe or OpenCV thread state is copied from the parent. Progress travels
back through a queue; each view's result is handed to ``on_view`` in the parent as soon as that view
finishes, so a caller can save it before the others end (an interrupted run keeps the finished views).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable, Mapping

from mocap.detect.blazepose import DetectorConfig, detect_video
from mocap.io.keypoints_h5 import Keypoints2D

ViewProgress = Callable[[str, int, int], None]  # camera, frames done, frames total

_progress_queue = None  # set in each worker by _init_worker


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _init_worker(q) -> None:
    global _progress_queue
    _progress_queue = q


def _detect_one(path: Path, camera: str, config: DetectorConfig, stop: int | None) -> Keypoints2D:
    def report(done: int, total: int) -> None:
        # Every frame would flood the queue at 40 fps per view; a few updates a second suffice.
        if done == total or done % 5 == 0:
            _progress_queue.put((camera, done, total))

    return detect_video(path, camera, config, stop, report)


def detect_views(sources: Mapping[str, Path], config: DetectorConfig = DetectorConfig(), *,
                 stop: int | None = None, workers: int | None = None, progress: ViewProgress | None = None,
                 on_view: Callable[[Keypoints2D], None] | None = None) -> dict[str, Keypoints2D]:
    """Detect every view of ``sources`` (camera -> video or image folder); returns camera -> one-view Keypoints2D.

    ``workers``: processes (default: one per view, at most the usable cores); 1 runs in this process.
    """
    workers = max(1, min(workers or usable_cores(), len(sources)))
    results: dict[str, Keypoints2D] = {}

    def finished(kp: Keypoints2D) -> None:
        results[kp.cameras[0]] = kp
        if on_view is not None:
            on_view(kp)

    if workers == 1:
        for camera, path in sources.items():
            report = (lambda d, t, c=camera: progress(c, d, t)) if progress else None
            finished(detect_video(path, camera, config, stop, report))
        return results

    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(q,)) as pool:
        pending = {pool.submit(_detect_one, Path(p), cam, config, stop) for cam, p in sources.items()}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(q, progress)
                for future in done:
                    finished(future.result())
            _drain(q, progress)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return results


def _drain(q, progress: ViewProgress | None) -> None:
    while True:
        try:
            camera, done, total = q.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(camera, done, total)
