"""Session discovery and the CLI's error contract (exit code 2, one line, no traceback)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mocap.cli import app
from mocap.errors import ConfigError, InputDataError
from mocap.session import Session

runner = CliRunner()


def write_video(path: Path, frames: int, fps: float = 30.0, size=(64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), i * 5 % 255, np.uint8))
    writer.release()
    return path


def write_images(folder: Path, frames: int, size=(64, 48)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        cv2.imwrite(str(folder / f"frame_{i}.png"), np.zeros((size[1], size[0], 3), np.uint8))
    return folder


@pytest.fixture
def session(tmp_path) -> Path:
    for cam in ("cam1", "cam2", "cam3"):
        write_video(tmp_path / "videos" / f"{cam}.mp4", 12)
    return tmp_path


def test_discovers_cameras_frames_fps(session):
    s = Session.load(session)
    assert s.cameras == ("cam1", "cam2", "cam3")
    assert s.num_frames == 12 and s.fps == pytest.approx(30.0)
    assert s.views[0].info.width == 64 and s.views[0].info.height == 48
    assert any("calibration.toml" in m for m in s.missing())
    assert any("keypoints2d.h5" in m for m in s.missing())


def test_image_folders_in_natural_order(tmp_path):
    write_images(tmp_path / "images" / "a", 11)
    write_images(tmp_path / "images" / "b", 11)
    (tmp_path / "session.yaml").write_text("fps: 50\n")
    s = Session.load(tmp_path)
    assert s.cameras == ("a", "b") and s.num_frames == 11 and s.fps == 50


def test_frame_count_mismatch_names_the_camera(session):
    write_video(session / "videos" / "cam2.mp4", 9)
    with pytest.raises(InputDataError, match=r"cam2\.mp4: camera cam2 has 9 frames, the others 12"):
        Session.load(session)


def test_fps_mismatch_names_the_camera(session):
    write_video(session / "videos" / "cam3.mp4", 12, fps=25)
    with pytest.raises(InputDataError, match=r"camera cam3 runs at 25 fps"):
        Session.load(session)
    (session / "session.yaml").write_text("fps: 30\n")  # an explicit rate settles it
    assert Session.load(session).fps == 30


def test_camera_subset_and_unknown_camera(session):
    (session / "session.yaml").write_text("cameras: [cam3, cam1]\n")
    assert Session.load(session).cameras == ("cam3", "cam1")
    (session / "session.yaml").write_text("cameras: [cam9]\n")
    with pytest.raises(InputDataError, match="cam9 not found"):
        Session.load(session)


def test_unknown_yaml_key_is_named(session):
    (session / "session.yaml").write_text("fsp: 30\n")
    with pytest.raises(ConfigError, match=r"session.yaml: unknown key\(s\) fsp"):
        Session.load(session)
    (session / "session.yaml").write_text("board:\n  squre: 0.02\n")
    with pytest.raises(ConfigError, match=r"session.yaml: board: unknown key\(s\) squre"):
        Session.load(session)


def test_bad_yaml_and_bad_types(session):
    (session / "session.yaml").write_text("fps: [30\n")
    with pytest.raises(ConfigError, match="session.yaml: invalid YAML at line"):
        Session.load(session)
    (session / "session.yaml").write_text("fps: fast\n")
    with pytest.raises(ConfigError, match="fps: expected a number"):
        Session.load(session)


def test_unreadable_video(session):
    (session / "videos" / "cam2.mp4").write_bytes(b"not a video")
    with pytest.raises(InputDataError, match=r"cam2\.mp4: unreadable video"):
        Session.load(session)


def test_no_footage(tmp_path):
    (tmp_path / "videos").mkdir()
    with pytest.raises(InputDataError, match="no footage found"):
        Session.load(tmp_path)


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "session folder not found"),
        (lambda p: (p.mkdir(), (p / "session.yaml").write_text("cams: 1\n")), "unknown key"),
        (lambda p: (write_video(p / "videos" / "a.mp4", 5), (p / "session.yaml").write_text(": :\n")), "invalid YAML"),
        (lambda p: (write_video(p / "videos" / "a.mp4", 5), (p / "videos" / "b.mp4").write_bytes(b"x")), "unreadable video"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(tmp_path, setup, message):
    folder = tmp_path / "s"
    setup(folder)
    result = runner.invoke(app, ["info", str(folder)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in result.output


def test_cli_debug_shows_the_exception(tmp_path):
    result = runner.invoke(app, ["--debug", "info", str(tmp_path / "missing")])
    assert result.exit_code != 0 and isinstance(result.exception, InputDataError)


def test_cli_info_table(session):
    result = runner.invoke(app, ["info", str(session)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "cam1" in result.output and "3 cameras, 12 frames, 30 fps" in result.output
    assert "missing calibration.toml" in result.output


def test_info_on_real_session(pose2sim_dir):
    s = Session.load(pose2sim_dir)
    assert s.cameras == ("cam01", "cam02", "cam03", "cam04") and s.num_frames == 100 and s.fps == 60
    assert [p.name for p in s.foreign_calibrations()] == ["Calib.qca.txt"]
