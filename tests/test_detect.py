"""The detect stage on small synthetic sessions: file layout, NaN frames, skipping, --force, atomic
per-view writes, views in parallel threads, and the CLI's commands and exit codes.

Whether BlazePose finds real people is checked on real footage in test_detect_real.py.
"""

import json
import os
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import mocap.io.keypoints_h5 as kh5
from mocap.cli import app
from mocap.detect.blazepose import DetectorConfig, check_model
from mocap.keypoint_formats import BLAZEPOSE33
from mocap.detect.parallel import detect_views
from mocap.detect.stage import detect_session
from mocap.errors import ConfigError, InputDataError
from mocap.io.keypoints_h5 import Keypoints2D, merge_views, read_keypoints, write_keypoints
from mocap.session import Session
from tests.test_session import write_video

runner = CliRunner()
FRAMES = 6


@pytest.fixture
def session(tmp_path) -> Path:
    for cam in ("cam1", "cam2", "cam3"):
        write_video(tmp_path / "videos" / f"{cam}.mp4", FRAMES, size=(128, 96))
    return tmp_path


def test_empty_frames_are_nan_never_dropped(session):
    result = detect_session(Session.load(session), workers=1)
    assert result.detected == ("cam1", "cam2", "cam3") and result.skipped == ()
    kp = read_keypoints(session / "output" / "keypoints2d.h5", ["cam1", "cam2", "cam3"])
    assert kp.keypoints.shape == (FRAMES, 3, 33, 3) and kp.names == BLAZEPOSE33 and kp.format == "blazepose33"
    assert not kp.detected.any() and np.isnan(kp.keypoints).all() and np.isnan(kp.boxes).all()
    assert kp.image_sizes.tolist() == [[128, 96]] * 3 and kp.fps == pytest.approx(30.0)
    meta = kp.view_meta[0]
    assert meta["detector"] == "mediapipe-blazepose" and meta["model_complexity"] == 1
    assert meta["source"].endswith("cam1.mp4") and meta["source_size"] > 0 and len(meta["source_sha256_ends"]) == 64
    assert result.detection_rate == {"cam1": 0.0, "cam2": 0.0, "cam3": 0.0}


def test_rerun_skips_done_views_redoes_changed_ones_and_force(session):
    s = Session.load(session)
    detect_session(s, ["cam1", "cam2"], workers=1)
    again = detect_session(s, workers=1)
    assert again.skipped == ("cam1", "cam2") and again.detected == ("cam3",)
    write_video(session / "videos" / "cam2.mp4", FRAMES, size=(128, 96), fps=30.0001)  # different bytes
    changed = detect_session(Session.load(session), workers=1)
    assert changed.detected == ("cam2",)
    other_settings = detect_session(s, ["cam1"], workers=1, config=DetectorConfig(min_detection_confidence=0.6))
    assert other_settings.detected == ("cam1",)
    forced = detect_session(s, force=True, workers=1)
    assert forced.detected == ("cam1", "cam2", "cam3")
    assert set(read_keypoints(s.output("keypoints")).cameras) == {"cam1", "cam2", "cam3"}


def test_views_in_parallel_threads(session):
    seen: dict[str, list[int]] = {}
    result = detect_session(Session.load(session), workers=2,
                            progress=lambda cam, done, total: seen.setdefault(cam, []).append(done))
    assert result.detected == ("cam1", "cam2", "cam3")
    assert all(v[-1] == FRAMES for v in seen.values()) and set(seen) == {"cam1", "cam2", "cam3"}
    assert read_keypoints(session / "output" / "keypoints2d.h5").keypoints.shape == (FRAMES, 3, 33, 3)


@pytest.fixture
def slow_views(monkeypatch):
    """detect_video replaced: camera "bad" fails at once, the others run 5 s unless cancelled; returns the
    cameras that saw the cancellation."""
    import mocap.detect.parallel as par

    stopped = []

    def fake_detect(path, camera, config, stop, progress):
        if camera == "bad":
            raise InputDataError(f"{path}: broken")
        try:
            for f in range(500):
                progress(f + 1, 500)
                time.sleep(0.01)
        except BaseException:
            stopped.append(camera)
            raise
        raise AssertionError("never cancelled")

    monkeypatch.setattr(par, "detect_video", fake_detect)
    return stopped


def test_a_failing_view_stops_the_others(slow_views):
    """The first error is raised; views still running stop at their next frame and are not handed on."""
    handed = []
    t0 = time.perf_counter()
    with pytest.raises(InputDataError, match="bad.mp4: broken"):
        detect_views({"slow": Path("slow.mp4"), "bad": Path("bad.mp4")}, workers=2, on_view=handed.append)
    assert slow_views == ["slow"] and handed == [] and time.perf_counter() - t0 < 3


def test_ctrl_c_stops_every_view(slow_views):
    """Ctrl-C arrives in the calling thread (here: raised from its progress callback); no thread runs on."""
    def interrupt(camera, done, total):
        if done >= 3:
            raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        detect_views({"a": Path("a.mp4"), "b": Path("b.mp4")}, workers=2, progress=interrupt)
    assert sorted(slow_views) == ["a", "b"] and time.perf_counter() - t0 < 3


def test_stderr_silencing_is_shared_by_threads(tmp_path):
    """Overlapping views must not leave file descriptor 2 pointing at /dev/null (each used to save and
    restore it on its own, so the last to leave could restore the other's /dev/null)."""
    from mocap.detect.blazepose import quiet_stderr

    original = os.fstat(2)
    first, second = quiet_stderr(), quiet_stderr()
    first.__enter__()
    second.__enter__()
    assert os.path.samestat(os.fstat(2), os.stat(os.devnull))
    first.__exit__(None, None, None)
    assert os.path.samestat(os.fstat(2), os.stat(os.devnull))  # the second view still runs
    second.__exit__(None, None, None)
    assert os.path.samestat(os.fstat(2), original)


def test_unknown_camera_and_foreign_file(session):
    s = Session.load(session)
    with pytest.raises(InputDataError, match="no camera camX"):
        detect_session(s, ["camX"])
    write_keypoints(s.output("keypoints"), one_view("cam1", fmt="body25", K=25))
    with pytest.raises(InputDataError, match="holds body25 keypoints.*--force"):
        detect_session(s, workers=1)
    detect_session(s, ["cam2"], force=True, workers=1)
    kp = read_keypoints(s.output("keypoints"))
    assert kp.format == "blazepose33" and kp.cameras == ("cam2",)  # the imported file was replaced


def test_complexity_that_would_download_is_refused():
    with pytest.raises(ConfigError, match="model_complexity 2 needs pose_landmark_heavy.tflite.*offline"):
        check_model(2)
    with pytest.raises(ConfigError, match="must be 0, 1 or 2"):
        check_model(5)
    check_model(1)


def one_view(cam: str, F: int = 4, fmt: str = "t3", K: int = 3, value: float = 1.0) -> Keypoints2D:
    kp = np.full((F, 1, K, 3), value, np.float32)
    return Keypoints2D((cam,), kp, np.zeros((F, 1, 4)), np.ones((F, 1), bool), [[10, 10]], fmt,
                       tuple(f"k{i}" for i in range(K)), 30.0, {"run": cam}, ({"v": cam},))


def test_merge_views_adds_replaces_and_checks(tmp_path):
    path = tmp_path / "k.h5"
    merge_views(path, one_view("a"))
    merge_views(path, one_view("b", value=2.0))
    merge_views(path, one_view("a", value=3.0))
    kp = read_keypoints(path, ["a", "b"])
    assert kp.keypoints[0, :, 0, 0].tolist() == [3.0, 2.0]
    assert kp.view_meta == ({"v": "a"}, {"v": "b"}) and kp.meta == {"run": "a"}
    with pytest.raises(InputDataError, match="holds t3 keypoints, cannot add t5"):
        merge_views(path, one_view("c", fmt="t5", K=5))
    with pytest.raises(InputDataError, match="camera a has 4 frames, the new views 7"):
        merge_views(path, one_view("c", F=7))


def test_interrupted_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "k.h5"
    merge_views(path, one_view("a"))
    before = path.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(kh5, "_write_view", crash)
    with pytest.raises(KeyboardInterrupt):
        merge_views(path, one_view("b"))
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    with h5py.File(path) as f:
        assert list(f) == ["a"]


def test_cli_detect_import_export(session, tmp_path):
    r = runner.invoke(app, ["detect", str(session), "--views", "cam1,cam2", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "cam1: person found in 0.0% of 6 frames" in r.output
    r = runner.invoke(app, ["detect", "run", str(session), "--workers", "1"])
    assert r.exit_code == 0 and "cam1: already detected" in r.output and "cam3: person found" in r.output
    r = runner.invoke(app, ["detect", "export", str(session), "-o", str(tmp_path / "op")])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "op" / "cam3_json").glob("*.json"))) == FRAMES
    r = runner.invoke(app, ["detect", "import", str(tmp_path / "op"), "--format", "openpose", "-o", str(session)])
    assert r.exit_code == 2 and "no person in any frame" in r.output, r.output  # blank footage: nothing to import
    for path in (tmp_path / "op").rglob("*.json"):  # another tool's BODY_25 files: no keypoint_source
        path.write_text(json.dumps({"people": json.loads(path.read_text())["people"]}))
    first = sorted((tmp_path / "op" / "cam1_json").glob("*.json"))[0]
    first.write_text(json.dumps({"people": [{"pose_keypoints_2d": [10.0, 20.0, 0.9] * 25}]}))
    r = runner.invoke(app, ["detect", "import", str(tmp_path / "op"), "--format", "openpose", "-o", str(session)])
    assert r.exit_code == 0, r.output
    kp = read_keypoints(session / "output" / "keypoints2d.h5")
    assert kp.format == "body25" and kp.num_frames == FRAMES and kp.image_sizes[0].tolist() == [128, 96]
    r = runner.invoke(app, ["detect", str(session), "--workers", "1"])
    assert r.exit_code == 2 and "holds body25 keypoints" in r.output


@pytest.mark.parametrize("args, message", [
    (["detect", "SESSION", "--complexity", "2"], "model_complexity 2"),
    (["detect", "SESSION", "--views", "nope"], "no camera nope"),
    (["detect", "import", "SESSION", "--format", "xml"], "unknown import format"),
    (["detect", "export", "SESSION", "--format", "coco"], "only openpose export"),
    (["detect", "export", "SESSION"], "keypoints file not found"),
])
def test_cli_errors_exit_2(session, args, message):
    r = runner.invoke(app, [str(session) if a == "SESSION" else a for a in args])
    assert r.exit_code == 2 and message in r.output, r.output


def test_unreadable_keypoints_file_is_replaced(session):
    s = Session.load(session)
    s.output_dir.mkdir()
    s.output("keypoints").write_bytes(b"garbage")
    detect_session(s, ["cam1"], workers=1)
    assert read_keypoints(s.output("keypoints")).cameras == ("cam1",)


def test_cli_masks_and_max_people_reach_the_file(session):
    """Masks are stored by default (one empty slot per frame here: nobody in these videos), not with
    --no-masks; the settings are part of what makes a view done, so changing them redoes it."""
    r = runner.invoke(app, ["detect", str(session), "--views", "cam1", "--workers", "1"])
    assert r.exit_code == 0, r.output
    path = session / "output" / "keypoints2d.h5"
    with h5py.File(path) as f:
        assert f["cam1/masks"].shape == (FRAMES, 1, 128, 128) and f["cam1/mask_boxes"].shape == (FRAMES, 1, 4)
    r = runner.invoke(app, ["detect", str(session), "--views", "cam1", "--workers", "1", "--no-masks", "--max-people", "2"])
    assert r.exit_code == 0 and "already detected" not in r.output, r.output
    with h5py.File(path) as f:
        assert "masks" not in f["cam1"]
        meta = kh5.read_view_meta(path)[1]["cam1"]
    assert meta["max_people"] == 2 and meta["masks"] is False and meta["graph"] == "tasks-finder+legacy-pose-crops"
    r = runner.invoke(app, ["detect", str(session), "--max-people", "0"])
    assert r.exit_code == 2 and "--max-people must be at least 1" in r.output


def test_wrong_header_is_read_by_load_and_refused_by_detect(tmp_path):
    # A truncated AVI keeps its header's count: Session.load trusts the header (no decoding), detect decodes
    # every frame anyway, finds fewer and names the file.
    from mocap.detect.blazepose import detect_video
    from tests.test_video import write_indexed

    (tmp_path / "videos").mkdir()
    data = write_indexed(tmp_path / "full.avi", 40, "MJPG").read_bytes()
    cut = tmp_path / "videos" / "cam1.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert Session.load(tmp_path).num_frames == 40
    with pytest.raises(InputDataError, match=r"cam1\.avi: the container says 40 frames but \d+ decode"):
        detect_video(cut, "cam1")
