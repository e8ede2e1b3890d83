"""Person segmentation masks as keypoints2d.h5 stores them: cropped to the person, resampled to S x S, uint8.

Convention (pixel centres at integers, OpenCV's): a mask ``(S, S)`` covers the image rectangle
``mask_box = (x0, y0, x1, y1)`` edge to edge; mask pixel ``(i, j)`` (row, column) is centred on the image
point ``x = x0 + (j + 0.5) * (x1 - x0) / S``, ``y = y0 + (i + 0.5) * (y1 - y0) / S``. The value is the
person probability x 255. `to_crop` and `to_image` are the two directions of that map.

The box is the square around the person's landmarks with a 20 % margin (the landmarks stop at the
wrists, heels and nose; the silhouette does not), so a mask holds the whole person at the same scale in
x and y. Parts of the box outside the image are 0.
"""

from __future__ import annotations

import numpy as np

from mocap.detect.crops import box_from_keypoints, center_scale

MASK_SIZE = 128
MARGIN = 1.2  # side of the mask's square over the longer side of the landmarks' box

# Segments of the BlazePose skeleton (indices into BLAZEPOSE33) drawn to tell two people apart.
_BONES = ((11, 12), (11, 23), (12, 24), (23, 24), (11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27),
          (27, 29), (29, 31), (24, 26), (26, 28), (28, 30), (30, 32), (0, 11), (0, 12), (0, 7), (0, 8))


def mask_box(keypoints: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """Square image box ``(..., 4)`` x0, y0, x1, y1 around keypoints ``(..., K, 3)`` (all of them: BlazePose
    predicts the whole body, also out of view); NaN where there are no keypoints."""
    kp = np.array(keypoints, dtype=np.float64)
    kp[..., 2] = np.where(np.isfinite(kp[..., 0]), 1.0, 0.0)
    center, scale = center_scale(box_from_keypoints(kp, 0.5), margin)
    half = 100.0 * scale[..., None]
    return np.concatenate([center - half, center + half], -1)


def crop_matrix(box: np.ndarray, size: int) -> np.ndarray:
    """The affine map ``(2, 3)`` image pixels -> mask pixels of a mask ``(size, size)`` over ``box``."""
    x0, y0, x1, y1 = (float(b) for b in box)
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    return np.array([[sx, 0.0, -x0 * sx - 0.5], [0.0, sy, -y0 * sy - 0.5]])


def to_crop(src: np.ndarray, box: np.ndarray, size: int = MASK_SIZE, src_box: np.ndarray | None = None) -> np.ndarray:
    """Resample a probability map ``src`` ``(h, w)`` float in [0, 1] into the mask ``(size, size)`` uint8 over
    ``box``. ``src`` covers the frame rectangle ``src_box`` edge to edge (default: it is the frame, pixel
    for pixel). Each mask pixel averages the source pixels it covers (area resampling, so a 4x smaller
    mask does not alias); outside ``src`` 0."""
    import cv2

    h, w = src.shape
    sb = np.array([-0.5, -0.5, w - 0.5, h - 0.5]) if src_box is None else np.asarray(src_box, float)
    # Area-average down to about the mask's resolution first, then one bilinear warp to the exact box.
    per_mask_px = (box[2] - box[0]) / size / ((sb[2] - sb[0]) / w)  # source pixels per mask pixel
    step = max(1, int(per_mask_px))
    if step > 1:
        src = cv2.resize(src, (max(1, w // step), max(1, h // step)), interpolation=cv2.INTER_AREA)
    k = np.array([(sb[2] - sb[0]) / src.shape[1], (sb[3] - sb[1]) / src.shape[0]])  # frame px per source px
    M = crop_matrix(box, size)
    # source pixel centre u lies at frame x = sb0 + (u + 0.5) * k
    A = M[:, :2] * k
    t = M[:, 2] + M[:, :2] @ (sb[:2] + 0.5 * k)
    out = cv2.warpAffine(np.asarray(src, np.float32), np.concatenate([A, t[:, None]], 1), (size, size),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def to_image(mask: np.ndarray, box: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """The stored mask ``(S, S)`` uint8 back into an image-sized probability map ``(H, W)`` float32 in [0, 1]
    (``image_size`` = width, height); 0 outside ``box``."""
    import cv2

    W, H = image_size
    M = crop_matrix(box, mask.shape[0])
    return cv2.warpAffine(mask.astype(np.float32) / 255.0, M, (int(W), int(H)),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def resample(mask: np.ndarray, box: np.ndarray, onto: np.ndarray, size: int = MASK_SIZE) -> np.ndarray:
    """A stored mask ``(S, S)`` uint8 over ``box``, resampled onto the grid of a ``(size, size)`` mask over the
    box ``onto``; 0 where ``box`` does not reach."""
    import cv2

    to_h = lambda M: np.vstack([M, [0.0, 0.0, 1.0]])
    onto_to_src = to_h(crop_matrix(box, mask.shape[0])) @ np.linalg.inv(to_h(crop_matrix(onto, size)))
    return cv2.warpAffine(mask, onto_to_src[:2], (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _skeleton_distance(keypoints: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Distance ``(size, size)`` in mask pixels from each mask pixel of ``box`` to the skeleton ``(K, 3)``."""
    import cv2

    M = crop_matrix(box, size)
    uv = keypoints[:, :2] @ M[:, :2].T + M[:, 2]
    canvas = np.full((size, size), 255, np.uint8)
    for a, b in _BONES:
        if b < len(uv) and np.isfinite(uv[[a, b]]).all():
            p, q = np.clip(uv[[a, b]], -4 * size, 5 * size)  # cv2 wants ints in a sane range
            cv2.line(canvas, (int(round(p[0])), int(round(p[1]))), (int(round(q[0])), int(round(q[1]))), 0, 2)
    if canvas.min() == 255:  # the skeleton lies outside the box: far from every pixel
        return np.full((size, size), np.inf, np.float32)
    return cv2.distanceTransform(canvas, cv2.DIST_L2, 3)


def person_masks(maps: list[tuple[np.ndarray, np.ndarray | None]], keypoints: np.ndarray,
                 size: int = MASK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(P, size, size)`` uint8 and their boxes ``(P, 4)`` of P people, each covering that person only.

    ``maps``: per person a probability map from the landmark model on that person's crop and the frame
    rectangle it covers (None: the whole frame; see `to_crop`), or (None, None) for no mask (its box is then
    NaN); ``keypoints`` ``(P, K, 3)`` image pixels.
    A person's crop often shows the other one too, and the model segments both; a pixel that another person's map also claims (> 0.5) is kept only by
    the person whose skeleton is nearer.
    """
    P = len(maps)
    boxes = mask_box(keypoints) if P else np.zeros((0, 4))
    masks = np.zeros((P, size, size), np.uint8)
    boxes[[m[0] is None for m in maps]] = np.nan  # no map: no mask (stored as 0 with a NaN box)
    for p in range(P):
        if not np.isfinite(boxes[p]).all():
            continue
        masks[p] = to_crop(maps[p][0], boxes[p], size, maps[p][1])
        others = [q for q in range(P) if q != p and maps[q][0] is not None]
        if not others:
            continue
        own = _skeleton_distance(keypoints[p], boxes[p], size)
        for q in others:
            claimed = to_crop(maps[q][0], boxes[p], size, maps[q][1]) > 127
            if claimed.any():
                nearer = _skeleton_distance(keypoints[q], boxes[p], size) < own
                masks[p][claimed & nearer] = 0
    return masks, boxes.astype(np.float32)
