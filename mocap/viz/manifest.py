"""What `mocap viz overlay` leaves beside its videos for the report: ``overlay.json``.

Fields: ``fit`` (the ``smpl.npz`` drawn), ``frames`` [first, stop), ``drawn``, ``codec``, ``style``, ``stills``
(frame -> PNG path relative to the overlay folder), ``seconds`` and ``cpu_seconds`` (the command's time).
This module imports no drawing code (and so no torch): the report reads it to reuse the stills.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "overlay.json"
STILL_BOX = (1160, 900)  # (w, h) of a still of all views: the report's page width


def read_manifest(overlay_dir: Path) -> dict:
    """The manifest's fields, or {} when it is missing or unreadable (then nothing is reused)."""
    try:
        data = json.loads((Path(overlay_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def saved_stills(overlay_dir: Path, fit: Path) -> dict[int, Path]:
    """The stills saved for the fit ``fit`` (frame -> PNG), only those written after ``fit`` was."""
    overlay_dir = Path(overlay_dir)
    stills = read_manifest(overlay_dir).get("stills", {})
    fit_time = Path(fit).stat().st_mtime
    out = {}
    for f, rel in stills.items() if isinstance(stills, dict) else ():
        png = overlay_dir / str(rel)
        if png.is_file() and png.stat().st_mtime >= fit_time:
            out[int(f)] = png
    return out
