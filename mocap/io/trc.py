"""OpenSim's TRC marker files: 3D point tracks, millimetres, one row per frame.

Layout (tab-separated, as OpenSim's TRCFileAdapter and Pose2Sim read and write it)::

    PathFileType  4  (X/Y/Z)  <file name>
    DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate  OrigDataStartFrame  OrigNumFrames
    <fps>     <fps>       <F>        <N>         mm     <fps>         1                   <F>
    Frame#  Time  <name 1>  (2 empty)  <name 2> ...
                  X1  Y1  Z1  X2  Y2  Z2 ...
    (an empty line)
    1  0.000000  x  y  z ...           frame numbers from 1, time = (frame - 1) / fps

A point missing in a frame (NaN) is written as empty fields, which OpenSim reads as missing. Axes: the world
of the positions given (mocap's y-up, or z-up when the caller turned it; OpenSim's own convention is y up).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mocap.io.atomic import atomic_path

MM = 1000.0
_CHUNK = 2000  # frames formatted at a time, for the progress callback


def write_trc(path: str | os.PathLike, positions: np.ndarray, names: Sequence[str], fps: float,
              progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``positions`` ``(F, N, 3)`` metres as a TRC file in millimetres, atomically.

    Args:
        names: ``(N,)`` marker names (no tabs or spaces).
    """
    path = Path(path)
    positions = np.asarray(positions, dtype=np.float64)
    F, N = positions.shape[:2]
    header = ["\t".join(("PathFileType", "4", "(X/Y/Z)", path.name)),
              "\t".join(("DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
                         "OrigDataStartFrame", "OrigNumFrames")),
              "\t".join((f"{fps:g}", f"{fps:g}", str(F), str(N), "mm", f"{fps:g}", "1", str(F))),
              "\t".join(("Frame#", "Time", *(f"{n}\t\t" for n in names))).rstrip("\t"),
              "\t".join(("", "", *(f"X{i}\tY{i}\tZ{i}" for i in range(1, N + 1)))), ""]
    table = np.concatenate([np.arange(1, F + 1)[:, None], (np.arange(F) / fps)[:, None],
                            positions.reshape(F, -1) * MM], 1)
    with atomic_path(path) as tmp, open(tmp, "w", newline="\n") as f:
        f.write("\n".join(header) + "\n")
        for start in range(0, F, _CHUNK):
            buf = io.StringIO()
            np.savetxt(buf, table[start:start + _CHUNK], fmt=["%d", "%.6f"] + ["%.3f"] * (3 * N), delimiter="\t")
            f.write(buf.getvalue().replace("nan", ""))
            if progress:
                progress(min(start + _CHUNK, F), F)
    return path
