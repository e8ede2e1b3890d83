"""Every bad input through the CLI: exit code 2, one `error:` line naming the file and the problem, no
traceback, no temporary or half-written file, earlier outputs byte-identical (issue 16).

One fixture (or parametrised case) per failure mode. The sessions are tiny synthetic ones (3 cameras x 8
frames of 192x108, keypoints without rendering); where a command needs footage, blank videos of the calibrated
size stand in and a stand-in detector returns the session's own keypoints (BlazePose itself is tested in
test_detect.py), so every case runs the real command up to the point where the input is refused.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mocap.cli._base as cli_base
import mocap.detect.parallel as parallel
from mocap.cli import app
from mocap.detect.blazepose import source_fingerprint
from mocap.io.keypoints_h5 import Detections2D, read_detections, read_keypoints, write_keypoints

runner = CliRunner()
FRAMES, SIZE = 8, (192, 108)


# --------------------------------------------------------------------------------------------- helpers

def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def fails(*args, names=(), watch: Path | None = None, contains=()) -> str:
    """Run ``mocap ARGS``: exit 2, exactly one ``error:`` line that names every path of ``names`` and holds every
    text of ``contains``, no traceback, and every file under ``watch`` unchanged (nothing new, nothing half-written)."""
    before = snapshot(watch) if watch is not None else None
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.output and "Traceback" not in r.stderr
    line = errors[0]
    for n in names:
        assert str(n) in line, line
    for text in contains:
        assert text in line, line
    if watch is not None:
        assert snapshot(watch) == before
    return line


def write_videos(root: Path, sizes: dict[str, tuple[int, int]], frames: int = FRAMES, fps: float = 60.0) -> None:
    import cv2

    (root / "videos").mkdir(exist_ok=True)
    for cam, (w, h) in sizes.items():
        writer = cv2.VideoWriter(str(root / "videos" / f"{cam}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        for _ in range(frames):
            writer.write(np.zeros((h, w, 3), np.uint8))
        writer.release()


def edit_toml(path: Path, edit) -> None:
    import toml

    doc = toml.loads(path.read_text())
    edit(doc)
    path.write_text(toml.dumps(doc))


# --------------------------------------------------------------------------------------------- sessions

@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A synthetic session: calibration.toml, output/keypoints2d.h5, session.yaml (fps 60), ground_truth.npz."""
    from mocap.synth.session import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("base") / "S"
    # Little noise: at 192x108 pixels the default 3 px would make the views disagree (association drops them).
    synthesize(root, SynthConfig(cameras=3, frames=FRAMES, image_scale=0.1, seed=1, noise=0.3, outliers=0.0,
                                 occlusion=0.05))
    return root


@pytest.fixture(scope="module")
def fitted(base, tmp_path_factory) -> Path:
    """The base session with output/smpl.npz from a clean `mocap run`."""
    root = tmp_path_factory.mktemp("fitted") / "S"
    shutil.copytree(base, root)
    r = invoke("run", root)
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture
def sess(base, tmp_path) -> Path:
    root = tmp_path / "S"
    shutil.copytree(base, root)
    return root


@pytest.fixture
def done(fitted, tmp_path) -> Path:
    root = tmp_path / "F"
    shutil.copytree(fitted, root)
    return root


class FakeDetector:
    """Stands in for BlazePose: returns the session's own keypoints for the view (image size from the video);
    ``interrupt_at`` raises KeyboardInterrupt when that many views have started (a Ctrl-C mid-run)."""

    def __init__(self, keypoints: Detections2D, interrupt_at: int | None = None) -> None:
        self.keypoints, self.interrupt_at, self.calls = keypoints, interrupt_at, []

    def __call__(self, path, camera, config, stop=None, progress=None) -> Detections2D:
        from mocap.io.video import probe

        self.calls.append(camera)
        if self.interrupt_at is not None and len(self.calls) >= self.interrupt_at:
            raise KeyboardInterrupt
        info = probe(path)
        det = self.keypoints.select([camera])
        meta = {**config.as_meta(), **source_fingerprint(Path(path)), "frames": stop}
        if progress is not None:
            progress(stop, stop)
        return Detections2D(det.cameras, det.keypoints, det.boxes, det.scores, np.array([[info.width, info.height]]),
                            det.format, det.names, info.fps or float("nan"), dict(det.meta), (meta,))


@pytest.fixture
def footage(sess, monkeypatch) -> tuple[Path, FakeDetector]:
    """``sess`` with blank videos of the calibrated size, its keypoints file removed, and the stand-in detector."""
    detector = FakeDetector(read_detections(sess / "output" / "keypoints2d.h5"))
    (sess / "output" / "keypoints2d.h5").unlink()
    write_videos(sess, {f"cam{v}": SIZE for v in range(3)})
    monkeypatch.setattr(parallel, "detect_video", detector)
    return sess, detector


# --------------------------------------------------------------------------------------------- output paths

def test_run_output_is_a_folder(sess):
    (sess / "output" / "smpl.npz").mkdir()
    fails("run", sess, names=[sess / "output" / "smpl.npz"], contains=["is a folder"], watch=sess)


def test_report_output_is_a_folder(done, tmp_path):
    (tmp_path / "dir").mkdir()
    fails("report", done, "-o", tmp_path / "dir", names=[tmp_path / "dir"], contains=["is a folder"], watch=tmp_path)


def test_calibrate_import_output_is_a_folder(sess, tmp_path):
    (tmp_path / "dir").mkdir()
    fails("calibrate", "import", sess / "calibration.toml", "--from", "anipose", "-o", tmp_path / "dir",
          names=[tmp_path / "dir"], contains=["is a folder"], watch=tmp_path)


def test_detect_export_output_is_an_existing_file(sess, tmp_path):
    (tmp_path / "file").write_text("mine")
    fails("detect", "export", sess, "-o", tmp_path / "file", names=[tmp_path / "file"], contains=["is a file"],
          watch=tmp_path)


def test_output_under_a_file(done, tmp_path):
    (tmp_path / "file").write_text("mine")
    fails("export", done / "output" / "smpl.npz", "--fmt", "bvh", "-o", tmp_path / "file" / "x.bvh",
          names=[tmp_path / "file"], contains=["folder is needed"], watch=tmp_path)


# --------------------------------------------------------------------------------------------- full disk

@pytest.fixture
def full_disk(monkeypatch):
    """Every plain write stops half-way with ENOSPC, as on a full disk (the atomic writer's last step)."""
    real = Path.write_bytes

    def write_bytes(self, data):
        real(self, bytes(memoryview(data)[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_run_on_a_full_disk_keeps_the_earlier_result(done, full_disk):
    fails("run", done, names=[done / "output"], contains=["smpl.npz", "no space left"], watch=done)


def test_detect_on_a_full_disk_keeps_the_earlier_keypoints(footage, full_disk):
    root, _ = footage
    kp = root / "output" / "keypoints2d.h5"
    fails("detect", root, "--workers", "1", names=[kp], contains=["no space left"], watch=root)


@pytest.fixture
def tmpfs(tmp_path):
    """A real 64 KB file system (needs root and mount; skipped elsewhere)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    (mnt / "pad").write_bytes(b"\0" * 60_000)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("fmt", ["npz", "h5", "glb", "bvh"])
def test_export_to_a_real_full_disk(done, tmpfs, fmt):
    line = fails("export", done / "output" / "smpl.npz", "--fmt", fmt, "-o", tmpfs / f"x.{fmt}",
                 names=[tmpfs / f"x.{fmt}"], contains=["no space left"], watch=tmpfs)
    assert "seek of closed file" not in line


def test_no_noise_from_the_writers_on_a_full_disk(done, tmpfs):
    """h5py crashed and zipfile printed "seek of closed file" when the disk filled under them: a fresh process shows it."""
    for fmt in ("npz", "h5"):
        r = subprocess.run([sys.executable, "-m", "mocap.cli", "export", str(done / "output" / "smpl.npz"), "--fmt", fmt,
                            "-o", str(tmpfs / f"x.{fmt}")], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error:"), r.stderr


# --------------------------------------------------------------------------------------------- keypoints2d.h5

def _rewrite_view(path: Path, camera: str, name: str, data) -> None:
    import h5py

    with h5py.File(path, "a") as f:
        del f[camera][name]
        f[camera].create_dataset(name, data=data)


@pytest.mark.parametrize("case", ["one_person_axis_missing", "strings", "wrong_keypoint_count", "frames_disagree"])
def test_malformed_keypoints_file(sess, case):
    kp_path = sess / "output" / "keypoints2d.h5"
    good = read_detections(kp_path)
    if case == "one_person_axis_missing":  # a version 1 view's (F, K, 3) in a version 2 file
        _rewrite_view(kp_path, "cam1", "keypoints", good.keypoints[:, 1, 0, :17])
        message = "keypoints has shape (8, 17, 3)"
    elif case == "strings":
        _rewrite_view(kp_path, "cam1", "keypoints", np.full(good.keypoints[:, 1].shape[:-1], "x", dtype=object))
        message = "expected numbers"
    elif case == "wrong_keypoint_count":
        _rewrite_view(kp_path, "cam1", "keypoints", good.keypoints[:, 1, :, :17])
        message = "K = 33"
    else:
        _rewrite_view(kp_path, "cam1", "boxes", good.boxes[:5, 1])
        message = "F = 8"
    line = fails("run", sess, names=[kp_path], contains=["cam1", message], watch=sess)
    assert "ValueError" not in line


# --------------------------------------------------------------------------------------------- eval --gt

def test_eval_truncated_ground_truth(done, tmp_path):
    gt = tmp_path / "gt.npz"
    gt.write_bytes((done / "ground_truth.npz").read_bytes()[:3000])
    fails("eval", done / "output" / "smpl.npz", "--gt", gt, names=[gt], contains=["truncated or damaged npz"],
          watch=tmp_path)


@pytest.mark.parametrize("head, kind", [("PathFileType\t4\t(X/Y/Z)\tx.trc\n", "TRC"), ("HIERARCHY\nROOT pelvis\n", "BVH"),
                                        ('{"a": 1}', "JSON")])
def test_eval_foreign_ground_truth_is_named(done, tmp_path, head, kind):
    gt = tmp_path / "gt.npz"
    gt.write_text(head)
    line = fails("eval", done / "output" / "smpl.npz", "--gt", gt, names=[gt], contains=[kind], watch=tmp_path)
    assert "pickle" not in line


# --------------------------------------------------------------------------------------------- calibration vs footage

def test_calibration_scaled_uniformly_is_rescaled_with_a_warning(done, tmp_path):
    """Calibrated at twice the footage's size: the intrinsics are scaled back, the fit is the same as before."""
    from mocap.calib.checks import scaled_camera
    from mocap.cameras import CameraRig
    from mocap.io.calibration_toml import load_rig, save_rig
    from mocap.io.smpl_npz import load_sequence

    rig = load_rig(done / "calibration.toml")
    before = load_sequence(done / "output" / "smpl.npz")
    save_rig(CameraRig(tuple(scaled_camera(c, (2 * SIZE[0], 2 * SIZE[1])) for c in rig)), done / "calibration.toml")
    r = invoke("run", done)
    assert r.exit_code == 0, r.output
    assert r.stderr.count("intrinsics scaled by 0.5") == 3, r.stderr
    after = load_sequence(done / "output" / "smpl.npz")
    np.testing.assert_allclose(after.poses, before.poses, atol=1e-5)
    assert len(after.meta["calibration_warnings"]) == 3
    r = invoke("report", done)
    assert r.exit_code == 0, r.output
    assert "intrinsics scaled by 0.5" in (done / "output" / "report.html").read_text()


def test_calibration_of_another_aspect_ratio_is_refused(sess):
    edit_toml(sess / "calibration.toml", lambda d: d["cam_1"].update(size=[192, 192]))
    fails("run", sess, names=[sess / "calibration.toml"], contains=["cam1", "192x192", "192x108", "aspect ratio"],
          watch=sess)


def test_video_of_another_aspect_ratio_is_refused_before_detection(footage):
    root, detector = footage
    write_videos(root, {"cam2": (96, 96)})
    fails("detect", root, names=[root / "calibration.toml"], contains=["cam2", "96x96"], watch=root)
    assert detector.calls == []


def test_padded_video_warns_in_info_detect_and_run(footage):
    root, detector = footage
    write_videos(root, {"cam2": (SIZE[0] - 8, SIZE[1])})  # codec padding: 8 px narrower
    r = invoke("info", root)
    assert r.exit_code == 0 and "cam2 calibrated for 192x108 but video is 184x108" in r.stderr, r.output
    r = invoke("detect", root, "--workers", "1")
    assert r.exit_code == 0 and "cam2 calibrated for 192x108" in r.stderr, r.output
    r = invoke("run", root)
    assert r.exit_code == 0 and "cam2 calibrated for 192x108 but footage is 184x108" in r.stderr, r.output


def test_non_positive_focal_length(sess):
    edit_toml(sess / "calibration.toml", lambda d: d["cam_0"]["matrix"][0].__setitem__(0, -100.0))
    fails("run", sess, names=[sess / "calibration.toml"], contains=["[cam_0]", "focal", "positive"], watch=sess)


def test_z_up_calibration_is_refused_pointing_to_up_z(sess):
    from mocap.calib.convert import change_world
    from mocap.calib.qualisys import Z_UP_TO_Y_UP
    from mocap.io.calibration_toml import load_rig, save_rig

    path = sess / "calibration.toml"
    save_rig(change_world(load_rig(path), Z_UP_TO_Y_UP.T), path)  # the same rig in a z-up world
    fails("run", sess, names=[path], contains=["world +z", "--up z"], watch=sess)
    write_videos(sess, {f"cam{v}": SIZE for v in range(3)})
    r = invoke("info", sess)
    assert "--up z" in r.stderr


# --------------------------------------------------------------------------------------------- session and config

def test_negative_fps(sess):
    (sess / "session.yaml").write_text("fps: -60\n")
    fails("run", sess, names=[sess / "session.yaml"], contains=["fps", "-60", "greater than 0"], watch=sess)


def test_huge_config_file_fails_at_once(sess):
    (sess / "session.yaml").write_text("cameras: [" + ", ".join(f"c{i}" for i in range(300_000)) + "]\n")
    fails("run", sess, names=[sess / "session.yaml"], contains=["too large"], watch=sess)


def test_many_unknown_cameras_are_listed_capped(footage):
    root, _ = footage
    (root / "session.yaml").write_text("cameras: [" + ", ".join(f"c{i}" for i in range(5000)) + "]\n")
    line = fails("detect", root, names=[root / "session.yaml"], contains=["(5000 in all)"], watch=root)
    assert len(line) < 400


def test_image_folders_without_fps_fail_at_start_and_the_session_fps_wins(sess, monkeypatch):
    import cv2

    from mocap.io.smpl_npz import load_sequence

    detector = FakeDetector(read_detections(sess / "output" / "keypoints2d.h5"))
    monkeypatch.setattr(parallel, "detect_video", detector)
    for v in range(3):
        (sess / "images" / f"cam{v}").mkdir(parents=True)
        for f in range(FRAMES):
            cv2.imwrite(str(sess / "images" / f"cam{v}" / f"{f:03d}.png"), np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
    (sess / "session.yaml").write_text("body: open\n")
    (sess / "output" / "keypoints2d.h5").unlink()
    fails("detect", sess, names=[sess / "session.yaml"], contains=["no frame rate", "fps:"], watch=sess)
    assert detector.calls == []
    fails("run", sess, names=[sess / "session.yaml"], contains=["no frame rate"], watch=sess)
    (sess / "session.yaml").write_text("body: open\nfps: 25\n")
    r = invoke("info", sess)
    assert "25 fps (from session.yaml)" in r.output
    r = invoke("detect", sess, "--workers", "1")
    assert r.exit_code == 0, r.output
    kp_path = sess / "output" / "keypoints2d.h5"
    import h5py

    with h5py.File(kp_path, "a") as f:  # a file written before fps was set
        f.attrs["fps"] = float("nan")
    r = invoke("run", sess)
    assert r.exit_code == 0, r.output
    assert load_sequence(sess / "output" / "smpl.npz").fps == 25.0


def test_video_names_differing_from_the_calibration_fail_at_detect(footage):
    root, detector = footage
    (root / "videos" / "cam2.mp4").rename(root / "videos" / "Cam2.mp4")
    fails("detect", root, names=[root / "calibration.toml"], contains=["Cam2", "footage has Cam2, cam0, cam1", "calibration cam0, cam1, cam2"],
          watch=root)
    assert detector.calls == []


def test_one_camera_session(sess):
    (sess / "session.yaml").write_text("fps: 60\ncameras: [cam0]\n")
    fails("run", sess, names=[sess / "output" / "keypoints2d.h5"], contains=["at least 2 views"], watch=sess)


def test_keypoints_all_nan(sess):
    path = sess / "output" / "keypoints2d.h5"
    det = read_detections(path)
    write_keypoints(path, Detections2D(det.cameras, np.full_like(det.keypoints, np.nan), det.boxes, det.scores,
                                       det.image_sizes, det.format, det.names, det.fps, det.meta, det.view_meta))
    fails("run", sess, names=[path], contains=["no keypoint"], watch=sess)


def test_export_of_all_nan_poses(done):
    from dataclasses import replace

    from mocap.io.smpl_npz import load_sequence, save_sequence

    path = done / "output" / "smpl.npz"
    seq = load_sequence(path)
    save_sequence(path, replace(seq, poses=np.full_like(seq.poses, np.nan)))
    fails("export", path, "--fmt", "bvh", names=[path], watch=done)


def test_openpose_import_without_any_person(sess, tmp_path):
    folder = tmp_path / "op"
    for cam in ("cam0", "cam1"):
        (folder / f"{cam}_json").mkdir(parents=True)
        for f in range(3):
            (folder / f"{cam}_json" / f"{cam}_{f:012d}_keypoints.json").write_text(json.dumps({"people": []}))
    fails("detect", "import", folder, "--format", "openpose", names=[folder], contains=["no person"], watch=tmp_path)


def test_report_on_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    fails("report", tmp_path / "empty", names=[tmp_path / "empty"], contains=["nothing to report"], watch=tmp_path)


# --------------------------------------------------------------------------------------------- messages

def test_square_brackets_are_printed_literally(sess, tmp_path):
    edit_toml(sess / "calibration.toml", lambda d: d["cam_0"].pop("matrix"))
    fails("run", sess, names=[sess / "calibration.toml"], contains=["[cam_0] lacks matrix"], watch=sess)
    odd = tmp_path / "[bold]x" / "nope"
    fails("info", odd, names=[odd])


def test_run_detects_first_when_keypoints_are_missing(footage):
    root, detector = footage
    r = invoke("info", root)
    assert "`mocap run`, which detects first" in " ".join(r.output.split())  # rich wraps at 80 columns
    r = invoke("run", root)
    assert r.exit_code == 0, r.output
    assert sorted(detector.calls) == ["cam0", "cam1", "cam2"] and (root / "output" / "smpl.npz").is_file()


def test_clean_run_reports_no_reinitialisation(done):
    r = invoke("run", done)
    assert r.exit_code == 0, r.output
    assert "reinitialized" not in r.output


def test_progress_lines_when_stderr_is_not_a_terminal(done, monkeypatch):
    monkeypatch.setattr(cli_base, "PROGRESS_EVERY", 0.0)
    r = invoke("run", done)
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("fitting:")]
    assert any("frames (" in line and "/s" in line and "ETA" in line for line in lines), r.stderr
    assert lines[-1].startswith(f"fitting: {FRAMES}/{FRAMES} frames, done in")


# --------------------------------------------------------------------------------------------- resume

def test_interrupted_detect_keeps_finished_views_and_the_rerun_detects_the_rest(footage, monkeypatch):
    root, detector = footage
    detector.interrupt_at = 3  # Ctrl-C while the third view is being detected
    r = invoke("detect", root, "--workers", "1")
    assert r.exit_code == 130  # click's exit status for Ctrl-C
    path = root / "output" / "keypoints2d.h5"
    assert read_keypoints(path).cameras == ("cam0", "cam1")
    assert [p.name for p in (root / "output").iterdir()] == ["keypoints2d.h5"]  # no temporary file left
    kept = read_keypoints(path).keypoints.copy()
    detector.interrupt_at, detector.calls = None, []
    r = invoke("detect", root, "--workers", "1")
    assert r.exit_code == 0, r.output
    assert detector.calls == ["cam2"]
    assert "cam0: already detected" in r.output and "cam1: already detected" in r.output
    again = read_keypoints(path)
    assert again.cameras == ("cam0", "cam1", "cam2")
    np.testing.assert_array_equal(again.keypoints[:, :2], kept)


# --------------------------------------------------------------------------------------------- already handled

@pytest.mark.parametrize("case", ["no_session", "unknown_key", "bad_yaml", "no_calibration", "camera_not_calibrated",
                                  "unreadable_video", "bad_frames", "one_view", "unknown_format", "missing_gt"])
def test_already_handled(case, done, tmp_path):
    S = done
    args, names, contains = {
        "no_session": (["run", tmp_path / "nope"], [tmp_path / "nope"], ["not found"]),
        "unknown_key": (["run", S], [S / "session.yaml"], ["unknown key", "fsp"]),
        "bad_yaml": (["run", S], [S / "session.yaml"], ["invalid YAML"]),
        "no_calibration": (["run", S], [S / "calibration.toml"], ["not found"]),
        "camera_not_calibrated": (["run", S], [S / "calibration.toml"], ["cam2"]),
        "unreadable_video": (["info", S], [S / "videos" / "cam0.mp4"], []),
        "bad_frames": (["shape", S, "--frames", "a:b", "-o", tmp_path / "s.npz"], [], ["--frames"]),
        "one_view": (["run", S, "--views", "1"], [], ["at least 2 views"]),
        "unknown_format": (["export", S / "output" / "smpl.npz", "--fmt", "xyz"], [], ["unknown format"]),
        "missing_gt": (["eval", S / "output" / "smpl.npz", "--gt", tmp_path / "gt.npz"], [tmp_path / "gt.npz"], []),
    }[case]
    if case == "unknown_key":
        (S / "session.yaml").write_text("fsp: 60\n")
    elif case == "bad_yaml":
        (S / "session.yaml").write_text("fps: [60\n")
    elif case == "no_calibration":
        (S / "calibration.toml").unlink()
    elif case == "camera_not_calibrated":
        edit_toml(S / "calibration.toml", lambda d: d.pop("cam_2"))
    elif case == "unreadable_video":
        (S / "videos").mkdir()
        (S / "videos" / "cam0.mp4").write_bytes(b"not a video")
    fails(*args, names=names, contains=contains, watch=S)
