"""C3D files (the motion-capture lab format: Vicon, Qualisys, Mokka, OpenSim, Visual3D) written with ezc3d.

Points only, no analog channels: ``POINT:LABELS`` the names, ``POINT:RATE`` the frame rate, ``POINT:UNITS`` ``mm``,
``POINT:X_SCREEN`` / ``POINT:Y_SCREEN`` the horizontal and vertical screen axes viewers such as Mokka use
(``+X`` / ``+Y`` for a y-up world, ``+X`` / ``+Z`` for z-up). A point missing in a frame (NaN) is written
with residual -1, C3D's "invalid" mark.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mocap.errors import MissingDependencyError
from mocap.io.atomic import atomic_path

MM = 1000.0


def write_c3d(path: str | os.PathLike, positions: np.ndarray, names: Sequence[str], fps: float,
              up_axis: str = "y") -> Path:
    """Write ``positions`` ``(F, N, 3)`` metres as C3D points in millimetres, atomically."""
    try:
        import ezc3d
    except ImportError:
        raise MissingDependencyError("C3D export needs ezc3d: pip install 'ezc3d>=1.7,<2'") from None
    path = Path(path)
    positions = np.asarray(positions, dtype=np.float64)
    F, N = positions.shape[:2]
    c = ezc3d.c3d()
    point = c["parameters"]["POINT"]
    point["RATE"]["value"] = [float(fps)]
    point["LABELS"]["value"] = list(names)
    point["UNITS"]["value"] = ["mm"]
    c.add_parameter("POINT", "X_SCREEN", ["+X"])
    c.add_parameter("POINT", "Y_SCREEN", [f"+{up_axis.upper()}"])
    data = np.ones((4, N, F))
    data[:3] = positions.transpose(2, 1, 0) * MM
    c["data"]["points"] = data
    with atomic_path(path) as tmp:
        c.write(str(tmp))
    return path
