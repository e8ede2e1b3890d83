"""Which folders a batch runs on and which steps it runs."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Sequence

from mocap.errors import ConfigError, InputDataError

#: The steps in the order a session needs them; ``export`` takes a format, ``export:bvh``.
STEP_ORDER = ("calibrate", "detect", "shape", "run", "export", "overlay", "report")
DEFAULT_STEPS = "detect,run,report"


def is_session(folder: Path) -> bool:
    """A session has footage (``videos/`` or ``images/``) or keypoints to fit (``output/keypoints2d.h5``)."""
    return (folder / "videos").is_dir() or (folder / "images").is_dir() or (folder / "output" / "keypoints2d.h5").is_file()


def discover(patterns: Sequence[str]) -> list[Path]:
    """Session folders named by ``patterns`` (folders or globs): a session itself, or every session one level
    below it. Each session once, in the order given (subfolders sorted)."""
    found: dict[Path, Path] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputDataError(f"{pattern}: matches no folder")
        for m in map(Path, matches):
            if not m.is_dir():
                raise InputDataError(f"{m}: not a folder (give session folders or folders holding them)")
            inside = [m] if is_session(m) else [p for p in sorted(m.iterdir()) if p.is_dir() and is_session(p)]
            if not inside:
                raise InputDataError(f"{m}: no session here (a session folder has videos/, images/ or "
                                     "output/keypoints2d.h5)")
            for s in inside:
                found.setdefault(s.resolve(), s)
    return list(found.values())


def parse_steps(text: str) -> tuple[str, ...]:
    """``"detect,run,export:bvh"`` -> the steps in the order a session needs them, each once."""
    steps = [s.strip() for s in text.split(",") if s.strip()]
    for s in steps:
        name, _, arg = s.partition(":")
        if name not in STEP_ORDER:
            raise ConfigError(f"--steps: unknown step {s!r}; use {', '.join(STEP_ORDER)} (export:FMT)")
        if (name == "export") != bool(arg):
            raise ConfigError(f"--steps: {s!r}: " + ("give the format, e.g. export:bvh" if name == "export"
                                                     else "only export takes a :FORMAT"))
    if not steps:
        raise ConfigError("--steps: no step given")
    if "export" in {s.partition(":")[0] for s in steps}:
        from mocap.io.export import FORMATS

        for s in steps:
            fmt = s.partition(":")[2]
            if s.startswith("export:") and fmt not in FORMATS:
                raise ConfigError(f"--steps: {s!r}: unknown format; use one of {', '.join(FORMATS)}")
    unique = list(dict.fromkeys(steps))
    return tuple(sorted(unique, key=lambda s: STEP_ORDER.index(s.partition(":")[0])))
