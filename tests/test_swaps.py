"""Left/right swap correction: swaps planted in synthetic views are found exactly and undone; clean views are
left alone; two views are never touched. On the real Pose2Sim demo it finds the frames where BlazePose
swapped cam02 (frames 41-74, seen in the overlay videos)."""

import numpy as np
import pytest

from mocap.fitting.swaps import SWAPS, find_swaps, fix_swaps, swap_orders
from mocap.io.keypoints_h5 import Keypoints2D
from mocap.keypoint_formats import BLAZEPOSE33
from mocap.synth.rig import ring_rig

F = 20


def skeleton(rng: np.random.Generator) -> np.ndarray:
    """``(F, 33, 3)`` world points: left keypoints 15-20 cm to the person's left (+x) of their right
    counterparts, the middle ones (nose) on the midline, the person walking and turning a little."""
    K = len(BLAZEPOSE33)
    base = np.zeros((K, 3))
    for i, name in enumerate(BLAZEPOSE33):
        side = 1.0 if "left" in name.split("_") else -1.0 if "right" in name.split("_") else 0.0
        height = {"ankle": 0.1, "heel": 0.05, "foot": 0.03, "knee": 0.5, "hip": 0.9, "wrist": 0.9, "pinky": 0.85,
                  "index": 0.85, "thumb": 0.87, "elbow": 1.15, "shoulder": 1.45}
        y = next((h for word, h in height.items() if word in name), 1.65)
        base[i] = [side * rng.uniform(0.15, 0.2), y, rng.uniform(-0.05, 0.05)]
    X = np.empty((F, K, 3))
    for f in range(F):
        a = 0.3 * np.sin(f / 5)
        R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        X[f] = base @ R.T + [0.02 * f, 0.0, 0.0]
    return X


def detections(rig, X: np.ndarray, rng: np.random.Generator) -> Keypoints2D:
    uv = np.stack([cam.project(X) for cam in rig], 1)  # (F, V, K, 2)
    uv = uv + rng.normal(0, 2.0, uv.shape)  # a detector's pixel noise
    conf = rng.uniform(0.6, 1.0, uv.shape[:-1])
    kp = np.concatenate([uv, conf[..., None]], -1).astype(np.float32)
    sizes = np.array([cam.image_size for cam in rig])
    return Keypoints2D(tuple(rig.names), kp, np.zeros((F, len(rig), 4)), np.ones((F, len(rig)), bool), sizes,
                       "blazepose33", BLAZEPOSE33, 30.0)


@pytest.fixture
def scene():
    rng = np.random.default_rng(3)
    rig = ring_rig(5, rng)
    return rig, detections(rig, skeleton(rng), rng)


def test_swap_orders_exchange_left_and_right():
    orders = dict(zip(SWAPS, swap_orders(BLAZEPOSE33)))
    name = {n: i for i, n in enumerate(BLAZEPOSE33)}
    assert BLAZEPOSE33[orders["all"][name["left_knee"]]] == "right_knee"
    assert BLAZEPOSE33[orders["all"][name["mouth_left"]]] == "mouth_right"
    assert orders["all"][name["nose"]] == name["nose"]
    assert BLAZEPOSE33[orders["legs"][name["right_heel"]]] == "left_heel"
    assert orders["legs"][name["left_wrist"]] == name["left_wrist"]
    assert BLAZEPOSE33[orders["arms"][name["left_wrist"]]] == "right_wrist"
    assert orders["arms"][name["left_hip"]] == name["left_hip"]
    for order in orders.values():  # each is its own inverse
        assert (order[order] == np.arange(len(BLAZEPOSE33))).all()


def test_planted_swaps_are_found_and_undone(scene):
    rig, clean = scene
    orders = dict(zip(SWAPS, swap_orders(BLAZEPOSE33)))
    planted = np.zeros((F, 5), np.int8)
    planted[5:10, 2] = SWAPS.index("all")
    planted[12:14, 0] = SWAPS.index("legs")
    planted[15, 3] = SWAPS.index("arms")
    planted[17, 1:3] = SWAPS.index("all")  # two of five views in one frame (two of four would be a tie)
    swapped = clean.keypoints.copy()
    for f, v in zip(*np.nonzero(planted)):
        swapped[f, v] = clean.keypoints[f, v, orders[SWAPS[planted[f, v]]]]
    assert (find_swaps(clean.keypoints, rig, BLAZEPOSE33) == 0).all()  # no false alarms
    kp = Keypoints2D(clean.cameras, swapped, clean.boxes, clean.detected, clean.image_sizes, clean.format,
                     clean.names, clean.fps)
    fixed, codes = fix_swaps(kp, rig)
    np.testing.assert_array_equal(codes, planted)
    np.testing.assert_array_equal(fixed.keypoints, clean.keypoints)
    # A few frames at a time (a long take's memory), chunk edges inside the planted runs: the same codes.
    np.testing.assert_array_equal(find_swaps(swapped, rig, BLAZEPOSE33, chunk=7), planted)


def test_a_relabelling_changes_only_the_errors_of_the_points_it_moves(scene):
    """Why the search triangulates only the moved points of each hypothesis: each point is solved on its own,
    so relabelling a view's legs leaves every other point's errors as they were, bit for bit."""
    from mocap.fitting.swaps import _errors
    from mocap.fitting.triangulation import normalized_coordinates

    rig, clean = scene
    order = swap_orders(BLAZEPOSE33)[SWAPS.index("legs")]
    xy = normalized_coordinates(rig, clean.keypoints[..., :2].astype(np.float64))
    conf = clean.keypoints[..., 2].astype(np.float64)
    xy_h, conf_h = xy.copy(), conf.copy()
    xy_h[:, 2], conf_h[:, 2] = xy[:, 2][:, order], conf[:, 2][:, order]
    before, after = _errors(rig, xy, conf, 0.3), _errors(rig, xy_h, conf_h, 0.3, chunk=7)
    moved = order != np.arange(len(order))
    np.testing.assert_array_equal(after[:, ~moved], before[:, ~moved])
    assert (np.nanmean(after[:, moved], (0, 2)) > 2 * np.nanmean(before[:, moved], (0, 2))).all()  # a leg swapped


def test_two_views_are_left_alone(scene):
    rig, clean = scene
    kp = clean.select(clean.cameras[:2])
    swapped = kp.keypoints.copy()
    swapped[3, 1] = swapped[3, 1, swap_orders(BLAZEPOSE33)[1]]
    assert not find_swaps(swapped, rig.subset(kp.cameras), BLAZEPOSE33).any()


@pytest.mark.shared
@pytest.mark.slow
def test_real_swaps_in_cam02(pose2sim_dir):
    """BlazePose on the first 80 frames of the real footage (tracking needs the frames before), checked on
    frames 36-79: only cam02 is relabelled, on frames inside its swapped stretch, and its error halves."""
    from mocap.calib.qualisys import read_qca
    from mocap.detect.consistency import reprojection_errors
    from mocap.detect.blazepose import DetectorConfig
    from mocap.detect.parallel import detect_views

    cams = ("cam01", "cam02", "cam03", "cam04")
    # The one-person tracker, whose cam02 swap stretch (frames 41-74) this test knows.
    views = detect_views({c: pose2sim_dir / "videos" / f"{c}.mp4" for c in cams},
                         DetectorConfig(max_people=1, masks=False), stop=80)
    views = {c: views[c].best() for c in cams}
    kp = Keypoints2D(cams, np.concatenate([views[c].keypoints for c in cams], 1)[36:],
                     np.concatenate([views[c].boxes for c in cams], 1)[36:],
                     np.concatenate([views[c].detected for c in cams], 1)[36:],
                     np.concatenate([views[c].image_sizes for c in cams]), "blazepose33", BLAZEPOSE33, 60.0)
    rig = read_qca(pose2sim_dir / "calibration" / "Calib.qca.txt").subset(cams)
    fixed, codes = fix_swaps(kp, rig)
    frames = {c: (np.nonzero(codes[:, v])[0] + 36).tolist() for v, c in enumerate(cams)}
    assert frames["cam01"] == frames["cam03"] == frames["cam04"] == []
    assert set(range(41, 60)) <= set(frames["cam02"]) <= set(range(41, 75)), frames["cam02"]
    before = np.nanmean(reprojection_errors(kp.keypoints, rig), axis=(0, 2))
    after = np.nanmean(reprojection_errors(fixed.keypoints, rig), axis=(0, 2))
    assert after[1] < 0.5 * before[1] and (after <= before + 0.5).all(), (before, after)
