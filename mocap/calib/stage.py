"""The calibrate stage over a session folder, as `mocap calibrate` and `mocap batch --steps calibrate` run it:
cameras from the board footage in ``calibration/``, or another tool's calibration file imported."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mocap import __version__
from mocap.errors import ConfigError, InputDataError, MissingDependencyError


@dataclass
class CalibrationRun:
    calibration: object  # mocap.calib.calibrate.RigCalibration
    report: object  # mocap.calib.report.CalibrationReport
    path: Path  # the calibration.toml written
    plot: Path | None = None  # output/calibration_top_view.png
    plot_error: str = ""  # why there is no plot, when one was asked for


def refuse_true_rig(out: Path) -> None:
    """A synthetic session's calibration.toml is its truth: calibrating must not replace it."""
    try:
        generator = tomllib.loads(out.read_text()).get("metadata", {}).get("generator")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return  # not ours to judge: it is replaced like any earlier calibration
    if generator == "mocap synth":
        raise ConfigError(f"{out} is the true rig of a synthetic session; pass -o to write the calibration "
                          "elsewhere and compare the two (tools/compare_rigs.py)")


def calibrate_session(session: str | Path, board_flags: dict | None = None, origin_frame: int | None = None,
                      stride: int = 1, max_intrinsic_frames: int = 60, output: Path | None = None, plot: bool = True,
                      on_start: Callable[[object, list[str]], None] | None = None,
                      detect_progress: Callable[[str, int, int], None] | None = None,
                      calibrate_progress: Callable[[int, int], None] | None = None) -> CalibrationRun:
    """Detect the board in every camera's footage, calibrate and bundle-adjust, write ``calibration.toml``
    (default ``SESSION/calibration.toml``). ``board_flags`` override session.yaml's board; ``on_start(board,
    cameras)`` is called before detection starts."""
    import aniposelib
    import cv2

    from mocap.calib.board import Board
    from mocap.calib.calibrate import calibrate_rig
    from mocap.calib.footage import detect_session, session_footage
    from mocap.calib.report import assess
    from mocap.config import BoardConfig, load_config, to_dict
    from mocap.io.calibration_toml import save_rig

    session = Path(session)
    out = output or session / "calibration.toml"
    if output is None and out.is_file():
        refuse_true_rig(out)
    config, footage, sizes = session_footage(session)
    board_cfg = load_config(BoardConfig, board_flags or {}, "command-line board options", base=config.board)
    board = Board(board_cfg)
    if on_start:
        on_start(board, list(footage))
    detections = detect_session(board, footage, sizes, stride, progress=detect_progress)
    cal = calibrate_rig(detections, board, origin_frame=origin_frame, max_intrinsic_frames=max_intrinsic_frames,
                        progress=calibrate_progress)
    report = assess(cal)
    meta = {"created_by": f"mocap {__version__} calibrate", "opencv": cv2.__version__, "aniposelib": aniposelib.__version__,
            "board": to_dict(board_cfg), "world": cal.world, "origin_frame": -1 if origin_frame is None else origin_frame,
            "adjusted": True, **report.to_metadata()}
    save_rig(cal.rig, out, meta)
    run = CalibrationRun(cal, report, out)
    if plot:
        from mocap.viz.calibration_plot import plot_top_view

        png = session / "output" / "calibration_top_view.png"
        try:
            plot_top_view(cal.rig, cal.points, png, f"{session.name}: cameras and board from above")
            run.plot = png
        except MissingDependencyError as e:
            run.plot_error = str(e)
    return run


def import_calibration(file: Path, from_: str, size: tuple[int, int] | None = None, binning: int = 1,
                       units: str = "m", up: str | None = None, output: Path | None = None):
    """Convert another tool's calibration into ``calibration.toml`` (default: in the session holding ``file``);
    returns (rig, path written)."""
    from mocap.calib.convert import import_rig
    from mocap.io.calibration_toml import file_sha256, save_rig

    rig = import_rig(file, from_, size, binning, units, up)
    if output is None:
        parent = file if file.is_dir() else file.parent
        output = (parent.parent if parent.name == "calibration" else parent) / "calibration.toml"
    if file.exists() and output.resolve() == file.resolve():
        raise InputDataError(f"{output}: would overwrite the file being imported; pass -o elsewhere")
    source = file if file.is_file() else file / "intri.yml"
    save_rig(rig, output, {"created_by": f"mocap {__version__} calibrate import", "imported_from": str(file),
                           "format": from_, "source_sha256": file_sha256(source) if source.is_file() else ""})
    return rig, output


def _foreign(root: Path) -> list[tuple[Path, str]]:
    """Other tools' calibration files in the session (root or calibration/) and the format of each."""
    from mocap.session import FOREIGN_CALIBRATIONS

    found = []
    for base in (root, root / "calibration"):
        for pattern in FOREIGN_CALIBRATIONS if base.is_dir() else ():
            for p in sorted(base.glob(pattern)):
                if p != root / "calibration.toml":
                    fmt = {"*.qca.txt": "qualisys", "*.toml": "anipose"}.get(pattern, "easymocap")
                    found.append((p.parent if fmt == "easymocap" else p, fmt))
    return list(dict.fromkeys(found))


def _board_footage(root: Path) -> list[Path]:
    from mocap.io.video import VIDEO_EXTS

    folder = root / "calibration"
    return [p for p in sorted(folder.iterdir()) if p.is_dir() or p.suffix.lower() in VIDEO_EXTS] if folder.is_dir() else []


def calibration_sources(root: Path) -> list[Path]:
    """What a session's calibration is made from: board footage, else another tool's file."""
    return _board_footage(root) or [p for p, _ in _foreign(root)]


def calibrate_or_import(root: Path) -> str:
    """Calibrate from ``calibration/`` board footage when the session has some, else import the one other
    tool's calibration file it holds; returns a line saying what was done."""
    if _board_footage(root):
        run = calibrate_session(root, plot=False)
        return f"calibrated from board footage, {run.report.mean_px:.2f} px"
    foreign = _foreign(root)
    if len(foreign) == 1:
        rig, _ = import_calibration(foreign[0][0], foreign[0][1], output=root / "calibration.toml")
        return f"imported {foreign[0][0].name} ({foreign[0][1]}, {len(rig)} cameras)"
    if foreign:
        raise InputDataError(f"{root}: several calibrations to import ({', '.join(p.name for p, _ in foreign)}); "
                             "keep one, or import it with `mocap calibrate import`")
    raise InputDataError(f"{root}: nothing to calibrate from: put board footage in calibration/<camera>.mp4 or "
                         "another tool's calibration (e.g. Calib.qca.txt) in the session")
