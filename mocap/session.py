"""A capture session folder, discovered and checked.

Layout::

    session/
      videos/<camera>.<mp4|avi|mov|mkv>   or   images/<camera>/*.jpg|png
      calibration/<camera>.<ext>|<camera>/  board footage per camera (optional)
      calibration.toml                      anipose-format calibration (optional until `mocap run`)
      session.yaml                          fps, camera subset, board, body model, pipeline overrides (optional)
      output/                               everything mocap writes
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mocap.config import SessionConfig, load_config, read_yaml
from mocap.errors import CalibrationError, ConfigError, InputDataError, listing
from mocap.io.video import IMAGE_EXTS, VIDEO_EXTS, VideoInfo, probe

#: Outputs a session can hold, by name, relative to the session folder.
OUTPUTS = {
    "keypoints": "output/keypoints2d.h5",
    "smpl": "output/smpl.npz",
    "report": "output/report.html",
}
#: Calibration files of other tools that `mocap calibrate import` reads.
FOREIGN_CALIBRATIONS = ("*.qca.txt", "intri.yml", "extri.yml", "*.toml")


@dataclass(frozen=True)
class View:
    camera: str
    info: VideoInfo


def _discover_sources(folder: Path, allow_dirs: bool) -> dict[str, Path]:
    sources: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        is_video = p.is_file() and p.suffix.lower() in VIDEO_EXTS
        is_images = allow_dirs and p.is_dir() and any(q.suffix.lower() in IMAGE_EXTS for q in p.iterdir())
        if not (is_video or is_images):
            continue
        name = p.stem if is_video else p.name
        if name in sources:
            raise InputDataError(f"{folder}: camera {name!r} has two sources ({sources[name].name}, {p.name}); keep one")
        sources[name] = p
    return sources


def _check_consistent(views: list[View], fps_override: float | None, root: Path) -> tuple[int, float | None]:
    counts = Counter(v.info.frames for v in views)
    frames = counts.most_common(1)[0][0]
    for v in views:
        if v.info.frames != frames:
            raise InputDataError(
                f"{v.info.path}: camera {v.camera} has {v.info.frames} frames, the others {frames}; "
                "trim the videos to the same synchronised range")
    if fps_override is not None:
        return frames, fps_override
    rates = [v.info.fps for v in views if v.info.fps is not None]
    if not rates:
        return frames, None
    common = Counter(round(r, 2) for r in rates).most_common(1)[0][0]
    for v in views:
        if v.info.fps is not None and abs(v.info.fps - common) > 0.01:
            raise InputDataError(
                f"{v.info.path}: camera {v.camera} runs at {v.info.fps:g} fps, the others {common:g}; "
                f"resample it or set fps in {root / 'session.yaml'}")
    return frames, common


@dataclass(frozen=True)
class Session:
    root: Path
    config: SessionConfig
    views: tuple[View, ...]
    num_frames: int
    fps: float | None

    @classmethod
    def load(cls, path: str | os.PathLike, footage: bool = True) -> "Session":
        """Discover the cameras of ``path``, read ``session.yaml``, check the views agree.

        ``footage=False`` also accepts a session without videos or images (one written by `mocap synth`
        without ``--render``, or keypoints imported from another tool), for commands that read only its
        keypoints and calibration: it then has no views, ``num_frames`` 0 and the cameras of session.yaml.
        """
        root = Path(path)
        if not root.is_dir():
            raise InputDataError(f"{root}: session folder not found")
        yaml_path = root / "session.yaml"
        config = load_config(SessionConfig, read_yaml(yaml_path), str(yaml_path)) if yaml_path.exists() else SessionConfig()
        sources: dict[str, Path] = {}
        if (root / "videos").is_dir():
            sources.update(_discover_sources(root / "videos", allow_dirs=False))
        if (root / "images").is_dir():
            for name, p in _discover_sources(root / "images", allow_dirs=True).items():
                if name in sources:
                    raise InputDataError(f"{root}: camera {name!r} is in both videos/ and images/; keep one")
                sources[name] = p
        if not sources and not footage:
            return cls(root, config, (), 0, config.fps)
        if not sources:
            raise InputDataError(f"{root}: no footage found; put videos in {root / 'videos'}/<camera>.mp4 "
                                 f"or images in {root / 'images'}/<camera>/")
        if config.cameras is not None:
            unknown = [c for c in config.cameras if c not in sources]
            if unknown:
                raise InputDataError(f"{yaml_path}: cameras {listing(unknown)} not found; found {listing(sources)}")
            sources = {c: sources[c] for c in config.cameras}
        # Frame counts from the container header (decoding to the last frame cost 0.3-0.5 s per short 1080p clip):
        # `mocap detect` decodes every frame anyway and refuses a video whose header is wrong. OpenCV opens
        # without the GIL, so the videos are probed side by side.
        with ThreadPoolExecutor(min(len(sources), os.cpu_count() or 1)) as pool:
            infos = pool.map(lambda p: probe(p, exact=False), sources.values())
            views = [View(name, info) for name, info in zip(sources, infos)]
        frames, fps = _check_consistent(views, config.fps, root)
        return cls(root, config, tuple(views), frames, fps)

    @property
    def cameras(self) -> tuple[str, ...]:
        """The views' cameras; without footage, session.yaml's ``cameras`` (empty when it names none)."""
        return tuple(v.camera for v in self.views) if self.views else tuple(self.config.cameras or ())

    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """``(width, height)`` per camera, from the footage, else from calibration.toml (empty when neither)."""
        if self.views:
            return {v.camera: (v.info.width, v.info.height) for v in self.views}
        if not self.calibration_path.is_file():
            return {}
        from mocap.io.calibration_toml import load_rig

        return {c.name: c.image_size for c in load_rig(self.calibration_path)}

    @property
    def fps_source(self) -> str | None:
        """Where `fps` comes from: ``session.yaml``, ``the videos`` or None (image folders without ``fps:``)."""
        if self.config.fps is not None:
            return "session.yaml"
        return "the videos" if self.fps else None

    def require_fps(self) -> float:
        """The frame rate, or ConfigError when nothing gives it (image folders): checked before any long work."""
        if not self.fps:
            folders = [v.camera for v in self.views if v.info.fps is None]
            raise ConfigError(f"{self.root / 'session.yaml'}: no frame rate: image folders ({listing(folders)}) carry "
                              "none; add a line `fps: 30` (your capture's rate)")
        return self.fps

    @property
    def calibration_path(self) -> Path:
        return self.root / "calibration.toml"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    def output(self, name: str) -> Path:
        return self.root / OUTPUTS[name]

    def calibration_footage(self) -> dict[str, Path]:
        """Board footage per camera under ``calibration/`` (empty when none)."""
        folder = self.root / "calibration"
        found = _discover_sources(folder, allow_dirs=True) if folder.is_dir() else {}
        return {name: p for name, p in found.items() if name in self.cameras}

    def foreign_calibrations(self) -> list[Path]:
        """Calibration files of other tools lying in the session (candidates for `mocap calibrate import`)."""
        found: list[Path] = []
        for base in (self.root, self.root / "calibration"):
            if base.is_dir():
                for pattern in FOREIGN_CALIBRATIONS:
                    found += [p for p in sorted(base.glob(pattern)) if p != self.calibration_path]
        return found

    def check_calibration(self) -> list[str]:
        """The footage against ``calibration.toml`` (when there is one): every camera calibrated, image sizes that
        fit (`mocap.calib.checks`), a y-up world. Returns warnings; raises CalibrationError for what no fit survives."""
        from mocap.calib.checks import conform_rig, up_problem
        from mocap.io.calibration_toml import load_rig

        if not self.calibration_path.is_file():
            return []
        rig = load_rig(self.calibration_path)
        missing = [c for c in self.cameras if c not in rig]
        if missing:
            raise CalibrationError(
                f"{self.calibration_path}: no calibration for camera(s) {listing(missing)}; the footage has "
                f"{listing(self.cameras)}, the calibration {listing(rig.names)}; rename the videos or the cameras")
        sizes = {v.camera: (v.info.width, v.info.height) for v in self.views}
        _, notes = conform_rig(rig.subset(self.cameras), sizes, self.calibration_path, "video")
        up = up_problem(rig, self.calibration_path)
        return notes + ([up] if up else [])

    def missing(self) -> list[str]:
        """What the session still lacks for `mocap run`, each with what to do."""
        todo = []
        if not self.calibration_path.is_file():
            hint = (f"import {self.foreign_calibrations()[0].name} with `mocap calibrate import`" if self.foreign_calibrations()
                    else "run `mocap calibrate` on board footage in calibration/" if self.calibration_footage()
                    else "add board footage in calibration/<camera>.mp4 or import another tool's calibration")
            todo.append(f"calibration.toml: {hint}")
        if not self.output("keypoints").is_file():
            todo.append("output/keypoints2d.h5: run `mocap detect` (or `mocap run`, which detects first)")
        return todo
