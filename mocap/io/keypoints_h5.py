"""2D keypoints of every view in one HDF5 file (``output/keypoints2d.h5``).

Layout, format version 3 (one group per camera, so views can be added one by one and read by name)::

    /                      attrs: format_version, keypoint_format, keypoint_names (JSON), fps, meta (JSON)
    /<camera>/keypoints    (F, P, K, 3) float32: pixel x, pixel y (pixel centres at integers, OpenCV's
                           convention), confidence; NaN where a slot is empty
    /<camera>/boxes        (F, P, 4) float32: x0, y0, x1, y1 of each person; NaN where a slot is empty
    /<camera>/scores       (F, P) float32: the detector's score per person; NaN where a slot is empty
    /<camera>/detected     (F,) uint8: 1 where the detector found at least one person
    /<camera>/masks        (F, P, S, S) uint8, optional: person probability x 255 inside mask_boxes, resampled
                           to S x S pixels (gzip)
    /<camera>/mask_boxes   (F, P, 4) float32, optional: the image box x0, y0, x1, y1 each mask covers, edge to edge
                           (pixel centres at integers; `mocap.detect.masks.to_image` pastes a mask back)
    /<camera>/guided       (F, P) uint8, optional: 1 where the slot was read by looking again where the other
                           views put a person this view's detector missed (`mocap.detect.guided`)
    /<camera>              attrs: image_size (width, height), plus per-view metadata (JSON; ``pixels:
                           centres`` on every view written since BlazePose's coordinates are read as
                           edge to edge: BlazePose views without it are read half a pixel up and left)

P is the number of person slots of that view (the most people found in one frame); slots are per frame and
carry no identity across frames or views: association across views and over time gives identities.
Version 1 files (written before people were separated: keypoints (F, K, 3), boxes (F, 4)) still load, as one
slot; version 2 files are version 3 without ``guided``. Frames are never dropped or shifted: frame f of every view is the same instant.

In memory: `Detections2D` holds every person, ``(F, V, P, K, 3)`` (frame, view, slot, keypoint, xyc);
`Keypoints2D` holds one person per view, ``(F, V, K, 3)``, which is what a fit consumes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mocap.errors import InputDataError, listing
from mocap.io.atomic import atomic_buffer

FORMAT_VERSION = 3
#: Per-view metadata key saying the keypoints and boxes put pixel centres at integers. BlazePose views written
#: without it (before mocap read MediaPipe's edge-to-edge coordinates as such) are half a pixel to the right
#: and down, and are shifted back when read.
PIXELS = "pixels"
_EDGE_ORIGIN_DETECTORS = ("mediapipe-blazepose",)


@dataclass(frozen=True, eq=False)
class Keypoints2D:
    """Detections of V views over F frames, K keypoints of one format."""

    cameras: tuple[str, ...]  # (V,)
    keypoints: np.ndarray  # (F, V, K, 3) x, y, confidence
    boxes: np.ndarray  # (F, V, 4)
    detected: np.ndarray  # (F, V) bool
    image_sizes: np.ndarray  # (V, 2) width, height
    format: str  # e.g. "blazepose33"
    names: tuple[str, ...]  # (K,)
    fps: float
    meta: dict = field(default_factory=dict)
    view_meta: tuple[dict, ...] | None = None  # (V,) per-view metadata, e.g. the source video
    masks: np.ndarray | None = None  # (F, V, S, S) uint8 person probability x 255 inside mask_boxes
    mask_boxes: np.ndarray | None = None  # (F, V, 4) x0, y0, x1, y1 the masks cover; NaN where none
    occluders: np.ndarray | None = None  # (F, V, S, S) uint8 the other people's masks on the grid of this one's
    # (from Detections2D.pick; in memory only: where another person covers the image, this person's mask is blind)

    def __post_init__(self) -> None:
        V, K = len(self.cameras), len(self.names)
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim != 4 or kp.shape[1:] != (V, K, 3):
            raise InputDataError(f"keypoints have shape {kp.shape}, expected (F, {V}, {K}, 3)")
        F = kp.shape[0]
        boxes = np.asarray(self.boxes, dtype=np.float32)
        detected = np.asarray(self.detected, dtype=bool)
        sizes = np.asarray(self.image_sizes, dtype=np.int64)
        for name, arr, shape in (("boxes", boxes, (F, V, 4)), ("detected", detected, (F, V)), ("image_sizes", sizes, (V, 2))):
            if arr.shape != shape:
                raise InputDataError(f"{name} have shape {arr.shape}, expected {shape}")
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "detected", detected)
        object.__setattr__(self, "image_sizes", sizes)
        vm = tuple(self.view_meta) if self.view_meta is not None else tuple({} for _ in range(V))
        object.__setattr__(self, "view_meta", vm)
        _check_masks(self, (F, V))

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    def select(self, cameras: Sequence[str]) -> "Keypoints2D":
        """The named views, in the order given."""
        idx = _view_index(self.cameras, cameras)
        return Keypoints2D(tuple(cameras), self.keypoints[:, idx], self.boxes[:, idx], self.detected[:, idx],
                           self.image_sizes[idx], self.format, self.names, self.fps, dict(self.meta),
                           tuple(self.view_meta[i] for i in idx), *_masks_at(self, (slice(None), idx)),
                           None if self.occluders is None else self.occluders[:, idx])


@dataclass(frozen=True, eq=False)
class Detections2D:
    """Every person the detector found in V views over F frames: P slots per frame and view.

    Slots carry no identity: slot p of frame f in view v and slot p of frame f+1 may be different people.
    `mocap.fitting.association` turns this into one `Keypoints2D` per person.
    """

    cameras: tuple[str, ...]  # (V,)
    keypoints: np.ndarray  # (F, V, P, K, 3) x, y, confidence; NaN where a slot is empty
    boxes: np.ndarray  # (F, V, P, 4)
    scores: np.ndarray  # (F, V, P) detector score; NaN where a slot is empty
    image_sizes: np.ndarray  # (V, 2) width, height
    format: str
    names: tuple[str, ...]  # (K,)
    fps: float
    meta: dict = field(default_factory=dict)
    view_meta: tuple[dict, ...] | None = None  # (V,)
    masks: np.ndarray | None = None  # (F, V, P, S, S) uint8
    mask_boxes: np.ndarray | None = None  # (F, V, P, 4)
    guided: np.ndarray | None = None  # (F, V, P) bool: read where the other views put a missed person; None: none was

    def __post_init__(self) -> None:
        V, K = len(self.cameras), len(self.names)
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim != 5 or kp.shape[1] != V or kp.shape[3:] != (K, 3):
            raise InputDataError(f"keypoints have shape {kp.shape}, expected (F, {V}, P, {K}, 3)")
        F, _, P = kp.shape[:3]
        boxes = np.asarray(self.boxes, dtype=np.float32)
        scores = np.asarray(self.scores, dtype=np.float32)
        sizes = np.asarray(self.image_sizes, dtype=np.int64)
        for name, arr, shape in (("boxes", boxes, (F, V, P, 4)), ("scores", scores, (F, V, P)), ("image_sizes", sizes, (V, 2))):
            if arr.shape != shape:
                raise InputDataError(f"{name} have shape {arr.shape}, expected {shape}")
        for attr, value in (("cameras", tuple(self.cameras)), ("names", tuple(self.names)), ("keypoints", kp),
                            ("boxes", boxes), ("scores", scores), ("image_sizes", sizes),
                            ("view_meta", tuple(self.view_meta) if self.view_meta is not None else tuple({} for _ in range(V)))):
            object.__setattr__(self, attr, value)
        _check_masks(self, (F, V, P))
        if self.guided is not None:
            guided = np.asarray(self.guided, dtype=bool)
            if guided.shape != (F, V, P):
                raise InputDataError(f"guided has shape {guided.shape}, expected {(F, V, P)}")
            object.__setattr__(self, "guided", guided)

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    @property
    def num_slots(self) -> int:
        return self.keypoints.shape[2]

    @property
    def present(self) -> np.ndarray:
        """(F, V, P) bool: the slot holds a person."""
        return np.isfinite(self.scores)

    @classmethod
    def from_keypoints(cls, kp: Keypoints2D) -> "Detections2D":
        """One slot per view: the single person of ``kp`` (score = mean confidence of its keypoints)."""
        scores = np.where(kp.detected, _mean_confidence(kp.keypoints), np.nan)
        masks = None if kp.masks is None else kp.masks[:, :, None]
        mask_boxes = None if kp.mask_boxes is None else kp.mask_boxes[:, :, None]
        return cls(kp.cameras, kp.keypoints[:, :, None], kp.boxes[:, :, None], scores[:, :, None], kp.image_sizes,
                   kp.format, kp.names, kp.fps, dict(kp.meta), kp.view_meta, masks, mask_boxes)

    def select(self, cameras: Sequence[str]) -> "Detections2D":
        """The named views, in the order given."""
        idx = _view_index(self.cameras, cameras)
        return Detections2D(tuple(cameras), self.keypoints[:, idx], self.boxes[:, idx], self.scores[:, idx],
                            self.image_sizes[idx], self.format, self.names, self.fps, dict(self.meta),
                            tuple(self.view_meta[i] for i in idx), *_masks_at(self, (slice(None), idx)),
                            None if self.guided is None else self.guided[:, idx])

    def pick(self, slots: np.ndarray, occluders: bool = True) -> Keypoints2D:
        """One person per view: ``slots`` (F, V) int, the slot to take in each frame and view, -1 for none.
        ``occluders=False`` leaves out the other people's masks (a resample per frame, view and person, with
        OpenCV), for readers that only look at the keypoints."""
        slots = np.asarray(slots)
        F, V, P = self.scores.shape
        if slots.shape != (F, V):
            raise ValueError(f"slots have shape {slots.shape}, expected {(F, V)}")
        take = np.clip(slots, 0, max(P - 1, 0))
        f, v = np.meshgrid(np.arange(F), np.arange(V), indexing="ij")
        none = (slots < 0) | (P == 0)
        if P == 0:
            kp = np.full((F, V, len(self.names), 3), np.nan, np.float32)
            boxes = np.full((F, V, 4), np.nan, np.float32)
        else:
            kp = self.keypoints[f, v, take]  # a copy (fancy indexing), emptied in place: one take-long copy, not two
            kp[none] = np.nan
            boxes = np.where(none[..., None], np.nan, self.boxes[f, v, take])
        detected = ~none & np.isfinite(self.scores[f, v, take] if P else np.zeros((F, V)))
        masks = mask_boxes = None
        if self.masks is not None and P:
            masks = np.where(none[..., None, None], 0, self.masks[f, v, take]).astype(np.uint8)
            mask_boxes = np.where(none[..., None], np.nan, self.mask_boxes[f, v, take])
        others = None
        if occluders and masks is not None and P > 1:
            others = _occluders(self, np.where(none, -1, take), mask_boxes)
        return Keypoints2D(self.cameras, kp, boxes, detected, self.image_sizes, self.format, self.names, self.fps,
                           dict(self.meta), self.view_meta, masks, mask_boxes, others)

    def best(self, occluders: bool = True) -> Keypoints2D:
        """The highest-scoring person of each frame and view (what a single-person tool would see)."""
        scores = np.where(self.present, self.scores, -np.inf)
        slots = np.argmax(scores, axis=2) if self.num_slots else np.zeros(scores.shape[:2], int)
        return self.pick(np.where(self.present.any(axis=2), slots, -1), occluders)


def _occluders(det: Detections2D, slots: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(F, V, S, S)`` uint8: the union of every other present person's mask, resampled onto the mask grid of
    the person in ``slots`` (F, V) (-1: none) whose mask boxes are ``boxes`` (F, V, 4)."""
    from mocap.detect.masks import resample

    F, V, P, S = det.masks.shape[:4]
    out = np.zeros((F, V, S, S), np.uint8)
    has_mask = det.present & np.isfinite(det.mask_boxes).all(-1)
    for f, v in zip(*np.nonzero(slots >= 0)):
        for q in np.flatnonzero(has_mask[f, v]):
            if q != slots[f, v] and np.isfinite(boxes[f, v]).all():
                out[f, v] = np.maximum(out[f, v], resample(det.masks[f, v, q], det.mask_boxes[f, v, q], boxes[f, v], S))
    return out


def _view_index(have: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Positions of the ``wanted`` cameras among ``have``; an error lists the missing ones."""
    missing = [c for c in wanted if c not in have]
    if missing:
        raise InputDataError(f"no keypoints for camera(s) {', '.join(missing)}; have {', '.join(have)}")
    return [list(have).index(c) for c in wanted]


def _mean_confidence(keypoints: np.ndarray) -> np.ndarray:
    """``(..., K, 3)`` -> ``(...)``: mean confidence of the finite keypoints, 0 where none is."""
    conf = keypoints[..., 2]
    finite = np.isfinite(conf)
    return np.where(finite, conf, 0).sum(-1) / np.maximum(finite.sum(-1), 1)


def _check_masks(obj, lead: tuple[int, ...]) -> None:
    """Masks and their boxes come together, with the container's leading axes."""
    if (obj.masks is None) != (obj.mask_boxes is None):
        raise InputDataError("masks and mask_boxes must be given together")
    if obj.masks is None:
        return
    masks = np.asarray(obj.masks, dtype=np.uint8)
    boxes = np.asarray(obj.mask_boxes, dtype=np.float32)
    if masks.ndim != len(lead) + 2 or masks.shape[:len(lead)] != lead or masks.shape[-1] != masks.shape[-2]:
        raise InputDataError(f"masks have shape {masks.shape}, expected {(*lead, 'S', 'S')}")
    if boxes.shape != (*lead, 4):
        raise InputDataError(f"mask_boxes have shape {boxes.shape}, expected {(*lead, 4)}")
    object.__setattr__(obj, "masks", masks)
    object.__setattr__(obj, "mask_boxes", boxes)


def _masks_at(obj, index) -> tuple:
    if obj.masks is None:
        return None, None
    return obj.masks[index], obj.mask_boxes[index]


def _json_attr(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _write_root(f, det: Detections2D) -> None:
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["keypoint_format"] = det.format
    f.attrs["keypoint_names"] = _json_attr(list(det.names))
    f.attrs["fps"] = float(det.fps)
    f.attrs["meta"] = _json_attr(det.meta)


def _write_view(f, det: Detections2D, v: int) -> None:
    g = f.create_group(det.cameras[v])
    g.create_dataset("keypoints", data=det.keypoints[:, v], compression="gzip", compression_opts=4)
    g.create_dataset("boxes", data=det.boxes[:, v])
    g.create_dataset("scores", data=det.scores[:, v])
    g.create_dataset("detected", data=det.present[:, v].any(axis=1).astype(np.uint8))
    if det.masks is not None:
        S = det.masks.shape[-1]
        g.create_dataset("masks", data=det.masks[:, v], compression="gzip", compression_opts=4,
                         chunks=(1, max(det.num_slots, 1), S, S))
        g.create_dataset("mask_boxes", data=det.mask_boxes[:, v])
    if det.guided is not None:
        g.create_dataset("guided", data=det.guided[:, v].astype(np.uint8))
    g.attrs["image_size"] = det.image_sizes[v]
    g.attrs["meta"] = _json_attr({**det.view_meta[v], PIXELS: "centres"})


def _as_detections(kp: Keypoints2D | Detections2D) -> Detections2D:
    return kp if isinstance(kp, Detections2D) else Detections2D.from_keypoints(kp)


def write_keypoints(path: str | os.PathLike, kp: Keypoints2D | Detections2D) -> Path:
    """Write all views atomically (temporary file, then rename); one person per view or every person."""
    import h5py

    det = _as_detections(kp)
    with atomic_buffer(path) as buf:
        with h5py.File(buf, "w") as f:
            _write_root(f, det)
            for v in range(len(det.cameras)):
                _write_view(f, det, v)
    return Path(path)


def merge_views(path: str | os.PathLike, kp: Keypoints2D | Detections2D) -> Path:
    """Add the views of ``kp`` to the file at ``path`` (created when absent), replacing same-named views.

    The file is rewritten whole into a temporary file and renamed, so a crash leaves the previous
    complete file. The views already there must share ``kp``'s keypoint format and frame count; the file's
    metadata becomes ``kp.meta``.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        return write_keypoints(path, kp)
    new = _as_detections(kp)
    fmt, view_meta = read_view_meta(path)
    if fmt is None:
        raise InputDataError(f"{path}: unreadable keypoints file; delete it or rerun with --force")
    kept = [read_detections(path, [c]) for c in view_meta if c not in new.cameras]
    for det in kept:
        if det.format != new.format:
            raise InputDataError(f"{path}: holds {det.format} keypoints, cannot add {new.format} views; "
                                 "replace the file (--force) or write elsewhere")
        if det.num_frames != new.num_frames:
            raise InputDataError(f"{path}: camera {det.cameras[0]} has {det.num_frames} frames, the new views "
                                 f"{new.num_frames}; replace the file (--force)")
    with atomic_buffer(path) as buf, h5py.File(buf, "w") as f:
        _write_root(f, new)
        for det in [*kept, new]:
            for v in range(len(det.cameras)):
                _write_view(f, det, v)
    return path


def read_view_meta(path: str | os.PathLike) -> tuple[str | None, dict[str, dict]]:
    """Keypoint format and per-camera metadata of a keypoints file, without loading the arrays.

    ``(None, {})`` when the file is absent or unreadable (it is then rewritten whole).
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs["keypoint_format"]), {c: json.loads(f[c].attrs.get("meta", "{}")) for c in f.keys()}
    except (OSError, KeyError, ValueError):
        return None, {}


def read_keypoints(path: str | os.PathLike, cameras: Sequence[str] | None = None,
                   occluders: bool = True) -> Keypoints2D:
    """One person per view: the highest-scoring detection of each frame and view (the only one in files
    written by a single-person detector). Use `read_detections` and association for several people.
    ``occluders``: as :meth:`Detections2D.pick`."""
    return read_detections(path, cameras).best(occluders)


# Axes of each dataset per format version (see the module docstring); K and S are checked against the names
# and each other, F across datasets.
_AXES = {1: {"keypoints": ("F", "K", 3), "boxes": ("F", 4), "detected": ("F",), "masks": ("F", "S", "S"),
             "mask_boxes": ("F", 4)},
         2: {"keypoints": ("F", "P", "K", 3), "boxes": ("F", "P", 4), "scores": ("F", "P"), "detected": ("F",),
             "masks": ("F", "P", "S", "S"), "mask_boxes": ("F", "P", 4)}}
_AXES[3] = {**_AXES[2], "guided": ("F", "P")}


def _dataset(path: Path, g, cam: str, name: str, axes: tuple, sizes: dict) -> np.ndarray:
    """A numeric dataset of the axes ``axes``; named axes must agree with ``sizes`` (filled as they are met)."""
    arr = g[name][()]
    where = f"{path}: camera {cam!r}: {name}"
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise InputDataError(f"{where} holds {getattr(arr, 'dtype', type(arr).__name__)} values, expected numbers")
    expected = "(" + ", ".join(str(a) for a in axes) + ")"
    if arr.ndim != len(axes):
        raise InputDataError(f"{where} has shape {arr.shape}, expected {expected}")
    for n, axis in zip(arr.shape, axes):
        if sizes.setdefault(axis, n) != n:
            raise InputDataError(f"{where} has shape {arr.shape}, expected {expected} with "
                                 f"{axis} = {sizes[axis]}")
    return arr


def _read_view(path: Path, g, cam: str, version: int, num_names: int) -> dict:
    for ds in ("keypoints", "boxes", "detected"):
        if ds not in g:
            raise InputDataError(f"{path}: camera {cam!r} lacks the dataset {ds!r}")
    sizes: dict = {"K": num_names, 3: 3, 4: 4}
    data = {name: _dataset(path, g, cam, name, axes, sizes) if name in g else None
            for name, axes in _AXES[version].items()}
    kp, boxes, detected = data["keypoints"], data["boxes"], data["detected"].astype(bool)
    masks, mask_boxes = data["masks"], data["mask_boxes"]
    size = np.asarray(g.attrs.get("image_size", ()))
    if size.shape != (2,) or size.dtype.kind not in "iuf":
        raise InputDataError(f"{path}: camera {cam!r}: attribute image_size is {size.tolist()!r}, expected (width, height)")
    if version < 2:  # one person per frame: add the slot axis
        kp, boxes = kp[:, None], boxes[:, None]
        scores = np.where(detected[:, None], _mean_confidence(kp), np.nan)
        masks = None if masks is None else masks[:, None]
        mask_boxes = None if mask_boxes is None else mask_boxes[:, None]
    else:
        scores = data["scores"] if data["scores"] is not None else np.where(detected[:, None], 1.0, np.nan)
    guided = data.get("guided")
    meta = json.loads(g.attrs.get("meta", "{}"))
    if meta.pop(PIXELS, None) != "centres" and meta.get("detector") in _EDGE_ORIGIN_DETECTORS:
        kp = kp.copy()
        kp[..., :2] -= 0.5
        boxes = boxes - 0.5
    return {"keypoints": kp, "boxes": boxes, "scores": scores, "masks": masks, "mask_boxes": mask_boxes,
            "guided": np.zeros(scores.shape, bool) if guided is None else guided.astype(bool),
            "size": tuple(size.tolist()), "meta": meta}


def _pad_slots(arr: np.ndarray | None, P: int, fill) -> np.ndarray | None:
    if arr is None or arr.shape[1] == P:
        return arr
    pad = np.full((arr.shape[0], P - arr.shape[1], *arr.shape[2:]), fill, arr.dtype)
    return np.concatenate([arr, pad], axis=1)


def read_detections(path: str | os.PathLike, cameras: Sequence[str] | None = None) -> Detections2D:
    """Every person of the views ``cameras`` (all, in file order, when ``None``); version 1 to 3 files."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: keypoints file not found (run `mocap detect` first)")
    try:
        with h5py.File(path, "r") as f:
            for key in ("keypoint_format", "keypoint_names", "fps"):
                if key not in f.attrs:
                    raise InputDataError(f"{path}: not a mocap keypoints file (attribute {key!r} missing)")
            version = int(f.attrs.get("format_version", 1))
            if version > FORMAT_VERSION:
                raise InputDataError(f"{path}: keypoints file format {version} is newer than this mocap reads "
                                     f"({FORMAT_VERSION}); update mocap")
            names = tuple(json.loads(f.attrs["keypoint_names"]))
            if not all(isinstance(n, str) for n in names):
                raise InputDataError(f"{path}: attribute keypoint_names is not a list of names")
            available = list(f.keys())
            wanted = list(cameras) if cameras is not None else available
            missing = [c for c in wanted if c not in f]
            if missing:
                raise InputDataError(f"{path}: no keypoints for camera(s) {listing(missing)}; file has {listing(available)}")
            if not wanted:
                raise InputDataError(f"{path}: the file holds no camera")
            views = [_read_view(path, f[cam], cam, version, len(names)) for cam in wanted]
            fmt, fps, meta = str(f.attrs["keypoint_format"]), float(f.attrs["fps"]), json.loads(f.attrs.get("meta", "{}"))
    except OSError as e:
        raise InputDataError(f"{path}: unreadable HDF5 file ({e})") from None
    except (ValueError, TypeError) as e:  # malformed JSON attributes, a group where a dataset belongs...
        raise InputDataError(f"{path}: malformed keypoints file ({e})") from None
    frames = {cam: pv["keypoints"].shape[0] for cam, pv in zip(wanted, views)}
    if len(set(frames.values())) > 1:
        raise InputDataError(f"{path}: views have different frame counts: {frames}")
    P = max(pv["keypoints"].shape[1] for pv in views)
    has_masks = all(pv["masks"] is not None for pv in views)
    stack = lambda key, fill: np.stack([_pad_slots(pv[key], P, fill) for pv in views], 1)  # noqa: E731
    try:
        return Detections2D(
            cameras=tuple(wanted), keypoints=stack("keypoints", np.nan), boxes=stack("boxes", np.nan),
            scores=stack("scores", np.nan), image_sizes=np.array([pv["size"] for pv in views]), format=fmt,
            names=names, fps=fps, meta=meta, view_meta=tuple(pv["meta"] for pv in views),
            masks=stack("masks", 0) if has_masks else None,
            mask_boxes=stack("mask_boxes", np.nan) if has_masks else None,
            guided=stack("guided", False) if any(pv["guided"].any() for pv in views) else None)
    except InputDataError as e:  # the container's own checks (shapes across views) name no file
        raise InputDataError(f"{path}: {e}") from None
