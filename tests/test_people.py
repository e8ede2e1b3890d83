"""Several people per view on small synthetic data: duplicate suppression, mask crops and their map back to
image pixels, keeping each person's mask to that person, the model bundle, and the Detections2D of a view.

Whether the detector finds two real people is checked on real footage in test_people_real.py.
"""

import io
import zipfile

import numpy as np
import pytest

from mocap.detect.masks import crop_matrix, mask_box, person_masks, to_crop, to_image
from mocap.detect.people import duplicates, iou
from mocap.keypoint_formats import BLAZEPOSE33


def test_iou_hand_computed():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    # overlap 5 x 10 = 50, union 100 + 100 - 50 = 150; disjoint 0
    np.testing.assert_allclose(iou(a, b), [[50 / 150, 0.0], [50 / 150, 0.0]])


def person(x: float, y: float, h: float = 100.0, conf: float = 0.9) -> np.ndarray:
    """A standing stick figure (K=4: head, hips, two feet) of height ``h`` with its head at (x, y)."""
    return np.array([[x, y, conf], [x, y + 0.5 * h, conf], [x - 10, y + h, conf], [x + 10, y + h, conf]])


def test_duplicates_hand_computed():
    a = person(100, 100)  # box (90, 100, 110, 200): diagonal sqrt(20^2 + 100^2) = 102.0
    a_again = a + [3, -3, 0]  # every keypoint 4.2 px off < 0.1 x 102 = 10.2: the same person
    b = person(300, 100)  # far away: another person
    c = a + [0, 12, 0]  # 12 px off (15.3 from a_again) > 10.2: boxes overlap (IoU 1760 / 2240 = 0.79), keypoints differ
    keep = duplicates(np.stack([a, a_again, b, c]), np.array([0.8, 0.9, 0.7, 0.6]))
    # a_again scores higher, so it is kept and a is the duplicate
    assert keep.tolist() == [False, True, True, True]
    # without confident keypoints in common, boxes decide: IoU 0.79 > 0.7 merges, 0.6 does not
    faint = c.copy()
    faint[:, 2] = 0.2
    assert duplicates(np.stack([a, faint]), np.array([0.9, 0.5])).tolist() == [True, False]
    assert duplicates(np.stack([a, faint]), np.array([0.9, 0.5]), max_iou=0.8).tolist() == [True, True]
    # an empty slot (NaN keypoints) is never kept
    assert duplicates(np.stack([a, np.full_like(a, np.nan)]), np.array([0.9, np.nan])).tolist() == [True, False]


def test_mask_box_is_the_square_around_the_person():
    kp = person(100, 100)  # bounds x 90..110, y 100..200: centre (100, 150), longer side 100
    np.testing.assert_allclose(mask_box(kp), [40, 90, 160, 210])  # side 1.2 x 100
    assert np.isnan(mask_box(np.full((4, 3), np.nan))).all()


def test_mask_crop_against_the_rectangle_it_samples():
    """A filled rectangle of image pixels, cropped into a 32 x 32 mask: each mask pixel is the fraction of
    its footprint that the rectangle covers (computed here independently, by supersampling the footprint)."""
    H, W, S = 120, 160, 32
    full = np.zeros((H, W), np.float32)
    full[30:70, 50:90] = 1.0  # pixels 50..89 (edges 49.5..89.5), rows 30..69
    box = np.array([41.5, 21.5, 105.5, 85.5])  # 64 x 64 image pixels: 2 per mask pixel
    mask = to_crop(full, box, S)
    sub = (np.arange(8) + 0.5) / 8
    xs = box[0] + (np.arange(S)[:, None] + sub) * 2  # (S, 8) sample x per mask column
    ys = box[1] + (np.arange(S)[:, None] + sub) * 2
    inside = lambda v, lo, hi: ((v >= lo) & (v < hi)).mean(1)  # noqa: E731
    expected = np.outer(inside(ys, 29.5, 69.5), inside(xs, 49.5, 89.5))
    np.testing.assert_allclose(mask / 255.0, expected, atol=1 / 255 + 1e-6)


def test_mask_round_trip_to_image_pixels():
    """A smooth blob cropped and pasted back lands where it was; the matrix maps the box corners to the mask's."""
    H, W = 300, 200
    yy, xx = np.mgrid[:H, :W]
    centre = np.array([83.3, 171.6])
    full = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * 15.0**2)).astype(np.float32)
    box = np.array([20.0, 100.0, 150.0, 230.0])
    mask = to_crop(full, box, 128)
    back = to_image(mask, box, (W, H))
    inside = (xx > box[0] + 2) & (xx < box[2] - 2) & (yy > box[1] + 2) & (yy < box[3] - 2)
    assert np.abs(back - full)[inside].max() < 0.02
    assert back[~((xx >= box[0] - 1) & (xx <= box[2] + 1) & (yy >= box[1] - 1) & (yy <= box[3] + 1))].max() == 0
    w = back * inside
    np.testing.assert_allclose([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()], centre, atol=0.1)
    M = crop_matrix(box, 128)
    np.testing.assert_allclose(M[:, :2] @ [20.0, 100.0] + M[:, 2], [-0.5, -0.5])  # box corner = mask pixel edge
    np.testing.assert_allclose(M[:, :2] @ [150.0, 230.0] + M[:, 2], [127.5, 127.5])


def figure(x: float, y: float, h: float = 200.0) -> np.ndarray:
    """BlazePose's 33 keypoints of a standing figure (every point on a vertical line through x, head at y)."""
    kp = np.zeros((33, 3))
    kp[:, 0], kp[:, 2] = x, 0.9
    kp[:, 1] = y + np.linspace(0, h, 33)
    return kp


def test_each_mask_keeps_its_own_person():
    """Both people's maps claim both bodies (as the model does when one crop shows both); each stored mask
    keeps its own body and not the other's."""
    H, W = 300, 400
    bodies = np.zeros((H, W), np.float32)
    bodies[40:250, 130:170] = 1.0  # person 0 around x = 150
    bodies[40:250, 210:250] = 1.0  # person 1 around x = 230
    kp = np.stack([figure(150, 45), figure(230, 45)])
    masks, boxes = person_masks([(bodies, None)] * 2, kp, 64)
    assert masks.shape == (2, 64, 64) and boxes.shape == (2, 4)
    for p, (own, other) in enumerate([(150, 230), (230, 150)]):
        back = to_image(masks[p], boxes[p], (W, H))
        assert back[60:230, own - 10:own + 10].mean() > 0.95
        assert back[60:230, other - 10:other + 10].max() < 0.05
    # a person without a map (read by the finder only) has no mask, and claims nothing from the other
    masks, boxes = person_masks([(bodies, None), (None, None)], kp, 64)
    assert masks[1].max() == 0 and np.isnan(boxes[1]).all() and np.isfinite(boxes[0]).all()
    assert to_image(masks[0], boxes[0], (W, H))[60:230, 220:240].mean() > 0.95
    # one person alone keeps every pixel its map has
    alone, _ = person_masks([(bodies, None)], kp[:1], 64)
    back = to_image(alone[0], mask_box(kp[0]), (W, H))
    assert back[60:230, 220:240].mean() > 0.95


def test_model_bundle_holds_both_models_with_input_metadata():
    from mediapipe.tasks.python.metadata import metadata

    from mocap.detect.people import model_bundle

    with zipfile.ZipFile(io.BytesIO(model_bundle())) as zf:
        assert sorted(zf.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
        for name, mean, std in (("pose_detector.tflite", 127.5, 127.5), ("pose_landmarks_detector.tflite", 0.0, 255.0)):
            md = metadata.MetadataDisplayer.with_model_buffer(zf.read(name)).get_metadata_json()
            assert "NormalizationOptions" in md and f"{mean}" in md and f"{std}" in md, md


def test_detections_of_a_view_from_frames(tmp_path):
    """Frames with 0, 2 and 1 people become P = 2 slots, empty slots NaN; masks beside them."""
    from mocap.detect.blazepose import DetectorConfig, _people, _stack

    config = DetectorConfig(mask_size=16)
    H, W = 300, 400
    full = np.zeros((H, W), np.float32)
    full[40:250, 130:170] = 1.0
    a, b = figure(150, 45), figure(330, 45)
    frames = [_people(np.zeros((0, 33, 3)), np.zeros(0), [], np.zeros(0, int), config),
              _people(np.stack([a, b]), np.array([0.9, 0.8]), [(full, None)] * 2, np.array([0, 1]), config),
              # a duplicate; the better reading is in slot 1
              _people(np.stack([a, a + [1, 1, 0]]), np.array([0.9, 0.95]), [(full, None)] * 2, np.array([0, 1]), config)]
    det = _stack(frames, "cam1", (W, H), 30.0, {}, config)
    assert det.keypoints.shape == (3, 1, 2, 33, 3) and det.masks.shape == (3, 1, 2, 16, 16)
    assert det.present[:, 0].tolist() == [[False, False], [True, True], [False, True]]
    assert det.scores[2, 0, 1] == pytest.approx(0.95)  # the duplicate's better reading is kept
    np.testing.assert_allclose(det.boxes[1, 0, 1], [330, 45, 330, 245])
    assert det.names == BLAZEPOSE33 and det.masks[0].max() == 0 and det.masks[1, 0, 0].max() > 200


def test_tiles_cover_the_long_side():
    from mocap.detect.tracker import tiles

    assert tiles(1088, 1920) == [(0, 0, 1088, 1920), (0, 0, 1088, 1088), (0, 416, 1088, 1504), (0, 832, 1088, 1920)]
    assert tiles(1440, 810) == [(0, 0, 1440, 810), (0, 0, 810, 810), (315, 0, 1125, 810), (630, 0, 1440, 810)]
    assert tiles(500, 500) == [(0, 0, 500, 500)]
    # a person up to 60 % of the short side tall lies whole inside one square: starts 416 apart, side 1088
    for top in range(0, 1920 - 652, 7):
        assert any(y0 <= top and top + 652 <= y1 for _, y0, _, y1 in tiles(1088, 1920)[1:])


@pytest.mark.parametrize("point", [(333.3, 222.7), (120.0, 400.5)])
def test_crop_landmarks_back_to_frame_pixels(point):
    """A landmark found in a track's crop (normalised to the crop, as MediaPipe returns it) maps back onto the
    frame point it shows: here the centroid of a blob, measured in the crop independently of the map."""
    from mocap.detect.crops import crop_image
    from mocap.detect.tracker import CROP, to_frame
    from tests.test_crops import blob_image, centroid

    crop, M = crop_image(blob_image(point), (300.0, 300.0), 2.5, CROP)  # 500 px square -> 512 px
    u = centroid(crop)  # crop pixels, centres at integers
    normalised = np.array([[(u[0] + 0.5) / CROP, (u[1] + 0.5) / CROP, 1.0]])
    back = to_frame(normalised, M, (CROP, CROP))[0]
    np.testing.assert_allclose(back[:2], point, atol=0.2)  # frame pixels, centres at integers
    # a tile is a plain shift: normalised 0.25 of 400 px is 100 px from the tile's left edge, pixel 99.5
    tile = to_frame(np.array([[0.25, 0.5, 0.9]]), np.array([[1.0, 0, -100], [0, 1.0, -40]]), (400, 200))[0]
    np.testing.assert_allclose(tile, [199.5, 139.5, 0.9])
