"""Finding and detecting a session's board footage (``session/calibration/<camera>.<ext>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from mocap.calib.board import Board, BoardDetections, detect_footage
from mocap.config import SessionConfig, load_config, read_yaml
from mocap.errors import InputDataError
from mocap.io.video import probe


def session_footage(root: str | Path) -> tuple[SessionConfig, dict[str, Path], dict[str, tuple[int, int]]]:
    """The session's config, board footage per camera, and the image size of each camera's recording (empty
    when the session has no recordings yet, e.g. calibrating before capturing)."""
    from mocap.session import Session, _discover_sources

    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"{root}: session folder not found")
    if (root / "videos").is_dir() or (root / "images").is_dir():
        s = Session.load(root)
        config, footage = s.config, s.calibration_footage()
        sizes = {v.camera: (v.info.width, v.info.height) for v in s.views}
    else:
        yaml_path = root / "session.yaml"
        config = load_config(SessionConfig, read_yaml(yaml_path), yaml_path.name) if yaml_path.exists() else SessionConfig()
        folder = root / "calibration"
        footage = _discover_sources(folder, allow_dirs=True) if folder.is_dir() else {}
        sizes = {}
    if len(footage) < 2:
        raise InputDataError(f"{root / 'calibration'}: board footage found for {len(footage)} camera(s); put one video "
                             "or image folder per camera there, named like the camera (calibration/cam1.mp4, ...)")
    return config, footage, sizes


def detect_session(board: Board, footage: dict[str, Path], sizes: dict[str, tuple[int, int]], stride: int = 1,
                   progress: Callable[[str, int, int], None] | None = None) -> list[BoardDetections]:
    """Detect the board in every camera's footage; the footage must match the recordings' resolution."""
    out = []
    for name, path in footage.items():
        info = probe(path)
        if name in sizes and (info.width, info.height) != sizes[name]:
            w, h = sizes[name]
            raise InputDataError(f"{path}: board footage is {info.width}x{info.height} but camera {name} records "
                                 f"{w}x{h}; film the board at the recording resolution (intrinsics depend on it)")
        cb = None if progress is None else (lambda d, t, n=name: progress(n, d, t))
        out.append(detect_footage(board, name, path, stride, cb))
    return out
