"""keypoints2d.h5 version 3: a person axis per view, optional masks and guided flags; versions 1 and 2 still load."""

import h5py
import numpy as np
import pytest

from mocap.errors import InputDataError
from mocap.io.keypoints_h5 import Detections2D, Keypoints2D, read_detections, read_keypoints, write_keypoints

NAMES = tuple("abcd")


def _detections(F=5, P=3, masks=True):
    rng = np.random.default_rng(0)
    V = 2
    kp = rng.uniform(0, 100, (F, V, P, 4, 3)).astype(np.float32)
    scores = rng.uniform(0.2, 1, (F, V, P)).astype(np.float32)
    scores[1, 0, 2] = np.nan  # an empty slot
    kp[1, 0, 2] = np.nan
    boxes = rng.uniform(0, 100, (F, V, P, 4)).astype(np.float32)
    m = rng.integers(0, 256, (F, V, P, 8, 8), dtype=np.uint8) if masks else None
    mb = boxes.copy() if masks else None
    return Detections2D(("c1", "c2"), kp, boxes, scores, [[100, 80]] * V, "t4", NAMES, 30.0, {"x": 1},
                        ({"v": 1}, {"v": 2}), m, mb)


def test_round_trip_with_people_and_masks(tmp_path):
    det = _detections()
    write_keypoints(tmp_path / "k.h5", det)
    back = read_detections(tmp_path / "k.h5")
    for name in ("keypoints", "boxes", "scores", "masks", "mask_boxes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(det, name))
    assert back.view_meta == det.view_meta and back.meta == det.meta and back.num_slots == 3
    with h5py.File(tmp_path / "k.h5") as f:
        assert f.attrs["format_version"] == 3 and f["c1/keypoints"].shape == (5, 3, 4, 3)
        assert "guided" not in f["c1"]
    assert back.guided is None


def test_blazepose_views_written_before_pixel_centres_are_read_half_a_pixel_back(tmp_path):
    """MediaPipe's coordinates span the image edge to edge; files now hold pixel centres at integers (and say
    so per view). A BlazePose view written without the mark is read shifted by exactly half a pixel; other
    detectors' views, and views written now, are read as written."""
    import json

    det = _detections()
    det = Detections2D(det.cameras, det.keypoints, det.boxes, det.scores, det.image_sizes, det.format, det.names,
                       det.fps, det.meta, ({"detector": "mediapipe-blazepose"}, {"detector": "openpose"}),
                       det.masks, det.mask_boxes)
    write_keypoints(tmp_path / "k.h5", det)
    now = read_detections(tmp_path / "k.h5")
    np.testing.assert_array_equal(now.keypoints, det.keypoints)
    assert now.view_meta == det.view_meta  # the mark is the file's, not the detections'
    with h5py.File(tmp_path / "k.h5", "r+") as f:
        for cam in det.cameras:
            meta = json.loads(f[cam].attrs["meta"])
            assert meta.pop("pixels") == "centres"
            f[cam].attrs["meta"] = json.dumps(meta)
    old = read_detections(tmp_path / "k.h5")
    np.testing.assert_allclose(old.keypoints[:, 0, ..., :2], det.keypoints[:, 0, ..., :2] - 0.5, atol=1e-5)
    np.testing.assert_array_equal(old.keypoints[:, 0, ..., 2], det.keypoints[:, 0, ..., 2])
    np.testing.assert_allclose(old.boxes[:, 0], det.boxes[:, 0] - 0.5, atol=1e-5)
    np.testing.assert_array_equal(old.mask_boxes, det.mask_boxes)  # masks were at pixel centres already
    np.testing.assert_array_equal(old.keypoints[:, 1], det.keypoints[:, 1])
    write_keypoints(tmp_path / "again.h5", old)  # written again: marked, so not shifted twice
    np.testing.assert_array_equal(read_detections(tmp_path / "again.h5").keypoints, old.keypoints)


def test_guided_flags_round_trip_and_a_version_2_file_has_none(tmp_path):
    import dataclasses

    guided = np.zeros((5, 2, 3), bool)
    guided[2, 1, 1] = guided[4, 0, 2] = True
    det = dataclasses.replace(_detections(), guided=guided)
    write_keypoints(tmp_path / "k.h5", det)
    np.testing.assert_array_equal(read_detections(tmp_path / "k.h5").guided, guided)
    assert read_detections(tmp_path / "k.h5", ["c2"]).guided[:, 0].sum() == 1
    with h5py.File(tmp_path / "k.h5", "a") as f:  # what mocap wrote before guided readings
        f.attrs["format_version"] = 2
        del f["c1/guided"], f["c2/guided"]
    back = read_detections(tmp_path / "k.h5")
    assert back.guided is None and back.num_slots == 3
    with pytest.raises(InputDataError, match="guided has shape"):
        dataclasses.replace(det, guided=guided[:, :, :2])


def test_best_and_pick_take_the_right_slot():
    det = _detections()
    best = det.best()
    expected = np.nanargmax(det.scores, axis=2)
    for f in range(det.num_frames):
        for v in range(2):
            np.testing.assert_array_equal(best.keypoints[f, v], det.keypoints[f, v, expected[f, v]])
            np.testing.assert_array_equal(best.masks[f, v], det.masks[f, v, expected[f, v]])
    slots = np.zeros((5, 2), int)
    slots[3, 1] = -1
    one = det.pick(slots)
    assert not one.detected[3, 1] and np.isnan(one.keypoints[3, 1]).all() and one.detected[3, 0]
    assert not det.pick(np.full((5, 2), 2)).detected[1, 0]  # the empty slot is no detection


def test_pick_without_occluders_reads_the_same_person():
    det = _detections()
    slots = np.array([[0, 1], [2, 0], [1, 1], [0, 2], [2, 2]])
    full, bare = det.pick(slots), det.pick(slots, occluders=False)
    assert full.occluders is not None and bare.occluders is None
    for name in ("keypoints", "boxes", "detected", "masks", "mask_boxes"):
        np.testing.assert_array_equal(getattr(bare, name), getattr(full, name))


def test_version_1_file_loads_as_one_slot(tmp_path):
    path = tmp_path / "old.h5"
    kp = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)
    with h5py.File(path, "w") as f:
        f.attrs.update(format_version=1, keypoint_format="t4", keypoint_names='["a", "b", "c", "d"]', fps=25.0, meta="{}")
        g = f.create_group("c1")
        g["keypoints"], g["boxes"] = kp, np.ones((5, 4), np.float32)
        g["detected"] = np.array([1, 1, 0, 1, 1], np.uint8)
        g.attrs["image_size"] = [10, 10]
    det = read_detections(path)
    assert det.keypoints.shape == (5, 1, 1, 4, 3) and det.present[:, 0, 0].tolist() == [1, 1, 0, 1, 1]
    single = read_keypoints(path)
    np.testing.assert_array_equal(single.keypoints[[0, 1, 3], 0], kp[[0, 1, 3]])
    assert single.detected[:, 0].tolist() == [True, True, False, True, True]


def test_single_person_container_round_trips_through_version_2(tmp_path):
    kp = Keypoints2D(("a",), np.ones((3, 1, 4, 3)), np.zeros((3, 1, 4)), [[True], [False], [True]], [[5, 5]], "t4",
                     NAMES, 10.0)
    write_keypoints(tmp_path / "k.h5", kp)
    back = read_keypoints(tmp_path / "k.h5")
    assert back.detected[:, 0].tolist() == [True, False, True]
    np.testing.assert_array_equal(back.keypoints[[0, 2]], kp.keypoints[[0, 2]])


def test_shapes_are_checked():
    det = _detections()
    with pytest.raises(InputDataError, match="scores have shape"):
        Detections2D(det.cameras, det.keypoints, det.boxes, det.scores[:, :, :2], det.image_sizes, det.format,
                     det.names, det.fps)
    with pytest.raises(InputDataError, match="together"):
        Detections2D(det.cameras, det.keypoints, det.boxes, det.scores, det.image_sizes, det.format, det.names,
                     det.fps, masks=det.masks)
