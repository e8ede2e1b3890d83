"""ReFit/SPIN crops on synthetic images where the person's box and some landmarks are known."""

import numpy as np
import pytest
import torch

from mocap.detect.crops import (IMAGENET_MEAN, IMAGENET_STD, RES, apply, box_from_keypoints, center_scale,
                                crop_image, image_tensor, normalize_keypoints, spin_transform)
from mocap.errors import InputDataError

BOX = np.array([300.0, 120.0, 420.0, 520.0])  # x0, y0, x1, y1: a tall "person" in a 640x720 image
MARKS = np.array([[310.5, 130.25], [400.0, 500.0], [360.0, 300.0]])  # landmarks inside the person


def person_image(box=BOX, marks=MARKS, size=(720, 640)) -> np.ndarray:
    img = np.full(size + (3,), 60, np.uint8)
    x0, y0, x1, y1 = box.astype(int)
    img[y0:y1, x0:x1] = 200
    return img


def blob_image(point, size=(720, 640), sigma=6.0) -> np.ndarray:
    """A Gaussian blob centred at a sub-pixel point (pixel centres at integers)."""
    yy, xx = np.mgrid[: size[0], : size[1]]
    g = np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * sigma**2))
    return np.repeat((255 * g).astype(np.uint8)[..., None], 3, axis=2)


def centroid(img: np.ndarray) -> np.ndarray:
    w = img[..., 0].astype(float)
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def test_center_scale_follows_spin():
    center, scale = center_scale(BOX)
    np.testing.assert_allclose(center, [360.0, 320.0])
    assert scale == pytest.approx(1.2 * 400 / 200)  # the longer side, with SPIN's 1.2 margin


def test_person_fills_the_crop_as_spin_says():
    center, scale = center_scale(BOX)
    crop, _ = crop_image(person_image(), center, scale)
    assert crop.shape == (RES, RES, 3)
    rows, cols = np.nonzero(crop[..., 0] > 130)
    # The long side spans res / 1.2 pixels, centred; the short side 120/400 of that.
    h = RES / 1.2
    w = h * 120 / 400
    assert rows.max() - rows.min() + 1 == pytest.approx(h, abs=1.5)
    assert cols.max() - cols.min() + 1 == pytest.approx(w, abs=1.5)
    assert (rows.min() + rows.max() + 1) / 2 == pytest.approx(RES / 2, abs=1.0)
    assert (cols.min() + cols.max() + 1) / 2 == pytest.approx(RES / 2, abs=1.0)


@pytest.mark.parametrize("point", [tuple(MARKS[0]), tuple(MARKS[1]), (333.3, 222.7)])
def test_returned_map_puts_landmarks_where_the_image_has_them(point):
    center, scale = center_scale(BOX)
    crop, M = crop_image(blob_image(point), center, scale)
    mapped = apply(M, np.array([point]))[0]
    np.testing.assert_allclose(centroid(crop), mapped, atol=0.15)
    # and it is SPIN's continuous map up to the rounding of the crop corners (< 1 image pixel)
    spin = apply(spin_transform(center, scale), np.array([point]))[0]
    np.testing.assert_allclose(mapped, spin, atol=RES / (200 * scale))


def test_outside_the_image_is_black():
    box = np.array([-100.0, 200.0, 100.0, 400.0])  # half the person left of the image
    center, scale = center_scale(box)
    crop, M = crop_image(person_image(box=np.array([0.0, 200.0, 100.0, 400.0])), center, scale)
    left_edge = int(apply(M, np.array([[0.0, 0.0]]))[0, 0])
    assert crop[:, : left_edge - 1].max() == 0 and crop[:, left_edge + 2:].max() > 0


def test_normalised_keypoints_span_minus_one_to_one():
    center, scale = np.array([100.0, 50.0]), 1.0
    corners = np.array([[0.0, -50.0], [200.0, 150.0], [100.0, 50.0]])  # square of side 200 around the centre
    uv = apply(spin_transform(center, scale), corners)
    np.testing.assert_allclose(normalize_keypoints(uv), [[-1, -1], [1, 1], [0, 0]])


def test_box_from_keypoints_ignores_unconfident_and_missing():
    kp = np.array([[[10, 20, 0.9], [50, 80, 0.8], [500, 500, 0.1], [np.nan, np.nan, 0.0]],
                   [[1, 1, 0.9], [2, 2, 0.0], [3, 3, 0.0], [4, 4, 0.0]]])
    box = box_from_keypoints(kp, 0.5)
    np.testing.assert_allclose(box[0], [10, 20, 50, 80])
    assert np.isnan(box[1]).all()  # one confident point is no box


def test_image_tensor_is_rgb_imagenet_normalised():
    bgr = np.zeros((2, RES, RES, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 120, 250  # B, G, R
    x = image_tensor(bgr)
    assert x.shape == (2, 3, RES, RES) and x.dtype == torch.float32
    expected = [(250 / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (120 / 255 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
                (10 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    np.testing.assert_allclose(x[1, :, 7, 9].numpy(), expected, rtol=1e-6)


def test_unusable_crop_is_refused():
    with pytest.raises(InputDataError, match="not a usable crop"):
        crop_image(person_image(), (np.nan, 3.0), 1.0)
