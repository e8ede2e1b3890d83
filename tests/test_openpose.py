"""OpenPose / COCO keypoint JSON in and out, and conversion between keypoint layouts."""

import json

import numpy as np
import pytest

from mocap.detect.formats import convert
from mocap.keypoint_formats import BLAZEPOSE33, BODY25, COCO17, COCO18, KEYPOINT_NAMES
from mocap.detect.openpose import export_openpose, import_keypoints
from mocap.errors import InputDataError
from mocap.io.keypoints_h5 import Detections2D, Keypoints2D


def test_blazepose_names_are_mediapipes():
    mp = pytest.importorskip("mediapipe")
    assert BLAZEPOSE33 == tuple(p.name.lower() for p in mp.solutions.pose.PoseLandmark)


def test_openpose_coco18_is_body25_without_midhip_and_feet():
    assert len(BODY25) == 25 and len(COCO18) == 18 and len(COCO17) == 17
    assert set(COCO18) == set(COCO17) | {"neck"}
    assert all(len(set(names)) == len(names) for names in KEYPOINT_NAMES.values())


def test_convert_blazepose_to_body25():
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 500, (4, 33, 2)), rng.uniform(0.2, 1, (4, 33, 1))], -1)
    out = convert(kp, "blazepose33", "body25")
    b = {n: i for i, n in enumerate(BLAZEPOSE33)}
    o = {n: i for i, n in enumerate(BODY25)}
    np.testing.assert_allclose(out[:, o["left_wrist"]], kp[:, b["left_wrist"]], rtol=1e-6)
    np.testing.assert_allclose(out[:, o["right_big_toe"]], kp[:, b["right_foot_index"]], rtol=1e-6)
    neck = out[:, o["neck"]]
    np.testing.assert_allclose(neck[:, :2], (kp[:, b["left_shoulder"], :2] + kp[:, b["right_shoulder"], :2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(neck[:, 2], np.minimum(kp[:, b["left_shoulder"], 2], kp[:, b["right_shoulder"], 2]), rtol=1e-6)
    small_toe = out[:, o["left_small_toe"]]
    assert np.isnan(small_toe[:, :2]).all() and (small_toe[:, 2] == 0).all()


def openpose_file(path, people):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p} for p in people]}))


def test_import_openpose_known_files(tmp_path):
    """Two cameras, BODY_25, with a second person, a frame with nobody, a missing file and a zero point."""
    rng = np.random.default_rng(1)
    a = rng.uniform(1, 900, (25, 3)); a[:, 2] = 0.9
    a[3] = 0  # elbow not found
    weak = rng.uniform(1, 900, (25, 3)); weak[:, 2] = 0.1
    openpose_file(tmp_path / "cam1_json" / "cam1_000000000000_keypoints.json", [weak.ravel().tolist(), a.ravel().tolist()])
    openpose_file(tmp_path / "cam1_json" / "cam1_000000000001_keypoints.json", [])
    openpose_file(tmp_path / "cam1_json" / "cam1_000000000003_keypoints.json", [a.ravel().tolist()])  # frame 2 missing
    openpose_file(tmp_path / "cam2_json" / "cam2_000000000000_keypoints.json", [a.ravel().tolist()])
    det = import_keypoints(tmp_path, "openpose", fps=30.0)
    assert det.num_slots == 2 and det.present[0, 0].tolist() == [True, True]  # both people of frame 0 are kept
    np.testing.assert_allclose(det.keypoints[0, 0, 0, :, :2], weak[:, :2], rtol=1e-6)  # in the file's order
    np.testing.assert_allclose(det.scores[0, 0], [0.1, a[a[:, 2] > 0, 2].mean()], rtol=1e-6)
    kp = det.best()
    assert kp.cameras == ("cam1", "cam2") and kp.format == "body25" and kp.names == BODY25
    assert kp.num_frames == 4
    assert kp.detected.tolist() == [[True, True], [False, False], [False, False], [True, False]]
    np.testing.assert_allclose(kp.keypoints[0, 0, 0], a[0], rtol=1e-6)  # the confident person was kept
    assert np.isnan(kp.keypoints[0, 0, 3, :2]).all() and kp.keypoints[0, 0, 3, 2] == 0
    assert np.isnan(kp.keypoints[1, 0, :, :2]).all() and np.isnan(kp.boxes[2, 0]).all()
    found = a[a[:, 2] > 0]
    np.testing.assert_allclose(kp.boxes[0, 0], [*found[:, :2].min(0), *found[:, :2].max(0)], rtol=1e-6)


def random_keypoints(fmt, F=5, V=2, seed=0) -> Keypoints2D:
    rng = np.random.default_rng(seed)
    K = len(KEYPOINT_NAMES[fmt])
    kp = np.concatenate([rng.uniform(1, 1000, (F, V, K, 2)), rng.uniform(0.05, 1, (F, V, K, 1))], -1).astype(np.float32)
    kp[1, 0, 4] = (np.nan, np.nan, 0)
    detected = np.ones((F, V), bool)
    detected[2, 1] = False
    kp[2, 1] = np.nan
    kp[2, 1, :, 2] = 0
    return Keypoints2D(("c1", "c2"), kp, np.zeros((F, V, 4)), detected, [[1000, 1000]] * V, fmt, KEYPOINT_NAMES[fmt], 25.0)


@pytest.mark.parametrize("fmt", ["body25", "coco18"])
def test_openpose_round_trip(tmp_path, fmt):
    kp = random_keypoints(fmt)
    folders = export_openpose(kp, tmp_path / "out")
    assert [f.name for f in folders] == ["c1_json", "c2_json"]
    back = import_keypoints(tmp_path / "out", "openpose", num_frames=kp.num_frames, cameras=("c1", "c2")).best()
    assert back.format == fmt
    np.testing.assert_array_equal(back.detected, kp.detected)
    np.testing.assert_allclose(back.keypoints[kp.detected], kp.keypoints[kp.detected], atol=1e-3)  # 3 decimals in the JSON
    assert np.isnan(back.keypoints[~kp.detected][..., :2]).all()


def test_blazepose_exports_as_body25_and_imports_as_blazepose(tmp_path):
    """The file records its source: import maps BODY_25's shoulder slot back to BlazePose's shoulder-top landmark."""
    kp = random_keypoints("blazepose33")
    export_openpose(kp, tmp_path)
    data = json.loads((tmp_path / "c1_json" / "c1_000000000000_keypoints.json").read_text())
    assert data["keypoint_source"] == "blazepose33"
    assert data["absent_keypoints"] == ["left_small_toe", "right_small_toe"]
    pts = np.array(data["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    assert (pts[BODY25.index("left_small_toe")] == 0).all()  # OpenPose's own "not found"
    body25 = convert(kp.keypoints, "blazepose33", "body25")[0, 0]
    has = np.isfinite(body25[:, 0])
    assert has.sum() == 23
    np.testing.assert_allclose(pts[has], body25[has], atol=1e-3)
    back = import_keypoints(tmp_path, "openpose", num_frames=kp.num_frames).best()
    assert back.format == "blazepose33" and back.names == BLAZEPOSE33
    kept = [BLAZEPOSE33.index(n) for n in BLAZEPOSE33 if n in BODY25 or n.endswith("foot_index")]
    assert len(kept) == 21  # nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles, heels, big toes
    np.testing.assert_allclose(back.keypoints[kp.detected][:, kept], kp.keypoints[kp.detected][:, kept], atol=1e-3)
    lost = np.setdiff1d(np.arange(33), kept)  # eye corners, mouth, fingers: not in BODY_25
    assert np.isnan(back.keypoints[:, :, lost, :2]).all()


def test_native_blazepose_layout_round_trip(tmp_path):
    kp = random_keypoints("blazepose33")
    export_openpose(kp, tmp_path, layout="blazepose33")
    data = json.loads((tmp_path / "c2_json" / "c2_000000000000_keypoints.json").read_text())
    assert len(data["people"][0]["pose_keypoints_2d"]) == 99 and "absent_keypoints" not in data
    back = import_keypoints(tmp_path, "openpose", num_frames=kp.num_frames).best()
    assert back.format == "blazepose33"
    np.testing.assert_allclose(back.keypoints[kp.detected], kp.keypoints[kp.detected], atol=1e-3)
    with pytest.raises(InputDataError, match="not BlazePose's"):
        export_openpose(random_keypoints("coco18"), tmp_path / "x", layout="blazepose33")


def test_every_person_out_and_back(tmp_path):
    """Three slots, a frame with one person, a frame with nobody: export and import keep each person."""
    rng = np.random.default_rng(3)
    F, V, P, K = 4, 2, 3, 25
    kp = np.concatenate([rng.uniform(1, 900, (F, V, P, K, 2)), rng.uniform(0.2, 1, (F, V, P, K, 1))], -1)
    scores = rng.uniform(0.3, 0.9, (F, V, P))
    scores[1, 0, 1:] = np.nan
    scores[2, 1] = np.nan
    kp[~np.isfinite(scores)] = np.nan
    det = Detections2D(("a", "b"), kp, np.zeros((F, V, P, 4)), scores, [[1000, 1000]] * V, "body25", BODY25, 30.0)
    export_openpose(det, tmp_path)
    assert len(json.loads((tmp_path / "a_json" / "a_000000000001_keypoints.json").read_text())["people"]) == 1
    back = import_keypoints(tmp_path, "openpose", num_frames=F)
    assert back.num_slots == P
    np.testing.assert_array_equal(back.present, det.present)
    for f in range(F):
        for v in range(V):
            want = sorted(np.flatnonzero(det.present[f, v]), key=lambda p: -scores[f, v, p])  # written by score
            np.testing.assert_allclose(back.keypoints[f, v, :len(want)], kp[f, v, want], atol=1e-3)


def test_import_coco_dataset_and_results(tmp_path):
    rng = np.random.default_rng(2)
    pts = rng.uniform(1, 500, (3, 17, 3)); pts[..., 2] = 2  # COCO visibility flag 2: labelled and visible
    (tmp_path / "camA.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "frame_0002.jpg", "width": 640, "height": 480},
                   {"id": 9, "file_name": "frame_0000.jpg", "width": 640, "height": 480}],
        "annotations": [{"image_id": 7, "keypoints": pts[0].ravel().tolist()}]}))
    (tmp_path / "camB.json").write_text(json.dumps(
        [{"image_id": 1, "keypoints": pts[1].ravel().tolist(), "score": 0.9},
         {"image_id": 2, "keypoints": pts[2].ravel().tolist(), "score": 0.8}]))
    kp = import_keypoints(tmp_path, "coco", num_frames=4).best()
    assert kp.format == "coco17" and kp.cameras == ("camA", "camB")
    assert kp.detected.tolist() == [[False, False], [False, True], [True, True], [False, False]]
    np.testing.assert_allclose(kp.keypoints[2, 0], pts[0], rtol=1e-6)
    np.testing.assert_allclose(kp.keypoints[1, 1], pts[1], rtol=1e-6)
    assert kp.image_sizes.tolist() == [[640, 480], [0, 0]]  # the results list does not say its size


@pytest.mark.parametrize("write, message", [
    (lambda d: (d / "c").mkdir(), "no OpenPose .json files"),
    (lambda d: openpose_file(d / "c" / "x_1.json", [[1, 2, 3, 4]]), "length 4"),
    (lambda d: openpose_file(d / "c" / "nonumber.json", []), "no frame number"),
    (lambda d: openpose_file(d / "c" / "f_1.json", [[0.5] * 60]), "20 points per person"),
    (lambda d: (d / "c").mkdir() or (d / "c" / "f_1.json").write_text("{"), "not readable JSON"),
])
def test_import_errors_name_the_file(tmp_path, write, message):
    write(tmp_path)
    with pytest.raises(InputDataError, match=message):
        import_keypoints(tmp_path / "c" if message == "no OpenPose .json files" else tmp_path, "openpose")


def test_import_checks_session_cameras_and_frames(tmp_path):
    openpose_file(tmp_path / "cam1_json" / "cam1_000000000009_keypoints.json", [])
    openpose_file(tmp_path / "cam1_json" / "cam1_000000000000_keypoints.json", [])
    with pytest.raises(InputDataError, match="camera.s. cam2"):
        import_keypoints(tmp_path, "openpose", cameras=("cam1", "cam2"))
    with pytest.raises(InputDataError, match="frame 9 found, but the session has 5 frames"):
        import_keypoints(tmp_path, "openpose", num_frames=5)


def test_cli_round_trip_keeps_every_person_and_the_source(tmp_path):
    """`mocap detect export` then `mocap detect import` on sessions without footage (like `mocap synth`'s)."""
    from typer.testing import CliRunner

    from mocap.cli import app
    from mocap.io.keypoints_h5 import read_detections, write_keypoints

    rng = np.random.default_rng(4)
    F, V, P, K = 3, 2, 2, 33
    kp = np.concatenate([rng.uniform(1, 900, (F, V, P, K, 2)), rng.uniform(0.2, 1, (F, V, P, K, 1))], -1)
    scores = np.where(np.arange(P) == 0, 0.9, 0.5) * np.ones((F, V, P))
    scores[1, 1, 1] = np.nan
    kp[1, 1, 1] = np.nan
    det = Detections2D(("c1", "c2"), kp, np.zeros((F, V, P, 4)), scores, [[1000, 1000]] * V, "blazepose33",
                       BLAZEPOSE33, 50.0)
    for name in ("s", "t"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "session.yaml").write_text("fps: 50\n")
    write_keypoints(tmp_path / "s" / "output" / "keypoints2d.h5", det)
    runner = CliRunner()
    r = runner.invoke(app, ["detect", "export", str(tmp_path / "s"), "-o", str(tmp_path / "op")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["detect", "import", str(tmp_path / "op"), "--format", "openpose", "-o", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    assert "up to 2 in one frame" in r.output
    back = read_detections(tmp_path / "t" / "output" / "keypoints2d.h5")
    assert back.format == "blazepose33" and back.fps == 50 and back.num_slots == 2
    np.testing.assert_array_equal(back.present, det.present)
    body25_points = [BLAZEPOSE33.index(n) for n in BLAZEPOSE33 if n in BODY25 or n.endswith("foot_index")]
    np.testing.assert_allclose(back.keypoints[det.present][:, body25_points], kp[det.present][:, body25_points], atol=1e-3)
