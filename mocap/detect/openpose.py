"""Keypoints from other tools: OpenPose JSON folders (BODY_25, COCO-18) and COCO keypoint JSON, in and out.

OpenPose writes one JSON file per frame and camera, ``{"people": [{"pose_keypoints_2d": [x, y, c, ...]}]}``
with ``x = y = c = 0`` for a point not found; Pose2Sim, EasyMocap and anipose read and write the same.
Layouts understood on import::

    DIR/<camera>[_json]/<anything><frame number>[_keypoints].json     --format openpose (BODY_25 or COCO-18)
    DIR/<camera>.json                                                 --format coco (17 points)

A COCO file is either a dataset (``images`` + ``annotations``; the frame is the last number in each
image's ``file_name``) or a results list (``[{"image_id": frame, "keypoints": [...], "score": s}]``).

The frame of an OpenPose file is the last number in its name, counted from the smallest number over all
cameras; missing files and empty ``people`` give empty frames, so frames never shift. Every person of a frame
is kept, as a `Detections2D` slot (in the file's order; score = mean confidence of the points found, or a COCO
result's own ``score``), for `mocap.fitting.association` to tell people apart. Points with
confidence 0 (OpenPose's "not found", written as ``0, 0, 0``) become NaN.

**Source detector.** A BODY_25 file written from another detector's keypoints is not OpenPose's BODY_25: mocap
writes BlazePose's landmarks in BODY_25's slots and derives the neck and mid-hip. So export records the layout
the points came from as a top-level ``"keypoint_source"`` (e.g. ``"blazepose33"``; OpenPose readers ignore
unknown keys), and import maps such files back to that layout, where each point means what the detector meant
(BlazePose's heels, big toes and ears sit elsewhere on the body than other detectors', see `mocap.body.keypoints`);
the derived neck and mid-hip are dropped. Points the source
never has (BlazePose: the small toes) are written as OpenPose writes a point it did not find, ``0, 0, 0``, and
listed in ``"absent_keypoints"``; ``--layout blazepose33`` leaves them out altogether (33 points per person in
BlazePose's landmark order, which import also reads).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from mocap.detect.crops import box_from_keypoints
from mocap.detect.formats import OPENPOSE_LAYOUTS, convert
from mocap.keypoint_formats import names_of
from mocap.errors import InputDataError
from mocap.io.atomic import atomic_folder, ensure_folder
from mocap.io.keypoints_h5 import Detections2D, Keypoints2D

_NUMBER = re.compile(r"(\d+)")


def _frame_number(name: str, source: Path) -> int:
    numbers = _NUMBER.findall(Path(name).stem)
    if not numbers:
        raise InputDataError(f"{source / name}: no frame number in the file name")
    return int(numbers[-1])


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputDataError(f"{path}: not readable JSON ({e})") from None


def _people(people: list[tuple[np.ndarray, float | None]]) -> list[tuple[np.ndarray, float]]:
    """Every person with at least one point found, in the file's order: ((K, 3) with "not found" as NaN, score).

    The score is the given one (COCO results) or the mean confidence of the points found.
    """
    out = []
    for pts, score in people:
        found = pts[:, 2] > 0
        if not found.any():
            continue
        pts = pts.astype(np.float32)
        pts[~found] = (np.nan, np.nan, 0.0)
        out.append((pts, float(score) if score is not None else float(pts[found, 2].mean())))
    return out


def _as_points(flat, k: int | None, where: str) -> np.ndarray:
    arr = np.asarray(flat, dtype=np.float64)
    if arr.ndim != 1 or arr.size % 3 or (k is not None and arr.size != 3 * k):
        raise InputDataError(f"{where}: keypoints list of length {arr.size}, expected {3 * k if k else 'a multiple of 3'}")
    return arr.reshape(-1, 3)


def _read_openpose_camera(folder: Path) -> tuple[dict[int, list], int | None, set[str]]:
    """frame number -> people (see `_people`), the number of points per person (None when nobody was seen), and
    the ``keypoint_source`` values the files name."""
    files = [p for p in folder.iterdir() if p.suffix.lower() == ".json"]
    if not files:
        raise InputDataError(f"{folder}: no OpenPose .json files")
    frames: dict[int, list] = {}
    k = None
    sources: set[str] = set()
    for path in files:
        n = _frame_number(path.name, folder)
        if n in frames:
            raise InputDataError(f"{path}: a second file for frame {n} in {folder}")
        data = _load_json(path)
        people = data.get("people") if isinstance(data, dict) else None
        if not isinstance(people, list):
            raise InputDataError(f"{path}: not an OpenPose file (no 'people' list)")
        if isinstance(data.get("keypoint_source"), str):
            sources.add(data["keypoint_source"])
        points = []
        for person in people:
            pts = _as_points(person.get("pose_keypoints_2d", []), k, str(path))
            if pts.size:
                k = len(pts)
                points.append((pts, None))
        frames[n] = _people(points)
    return frames, k, sources


def _read_coco_camera(path: Path) -> tuple[dict[int, list], tuple[int, int] | None]:
    """frame number -> people (see `_people`), and the image size when the file says it."""
    data = _load_json(path)
    size = None
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        frame_of = {img["id"]: _frame_number(img["file_name"], path) for img in data["images"]}
        sizes = {(img.get("width"), img.get("height")) for img in data["images"]}
        if len(sizes) == 1 and None not in next(iter(sizes)):
            size = next(iter(sizes))
        anns = data["annotations"]
        frames: dict[int, list] = {f: [] for f in frame_of.values()}
    elif isinstance(data, list):
        frame_of, anns, frames = None, data, {}
    else:
        raise InputDataError(f"{path}: not a COCO keypoint file (need 'images' and 'annotations', or a results list)")
    for ann in anns:
        try:
            image = ann["image_id"]
            frame = frame_of[image] if frame_of is not None else int(image)
            pts = _as_points(ann["keypoints"], 17, str(path))
            score = float(ann["score"]) if "score" in ann else None
        except (KeyError, TypeError, ValueError) as e:
            raise InputDataError(f"{path}: bad annotation {str(ann)[:80]} ({e!r})") from None
        frames.setdefault(frame, []).append((pts, score))
    return {f: _people(p) for f, p in frames.items()}, size


def _openpose_sources(folder: Path) -> tuple[dict[str, dict[int, list]], str]:
    """Per camera: frame -> people, and the layout the points mean (the recorded source's, see module docstring)."""
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and any(q.suffix == ".json" for q in p.iterdir()))
    sources = {re.sub(r"_json$", "", p.name): p for p in subdirs} or {folder.name: folder}
    per_camera, layouts, named = {}, {}, set()
    for cam, path in sources.items():
        per_camera[cam], layouts[cam], src = _read_openpose_camera(path)
        named |= src
    ks = {k for k in layouts.values() if k is not None}
    if len(ks) > 1:
        raise InputDataError(f"{folder}: cameras disagree on the keypoint layout ({layouts})")
    k = ks.pop() if ks else 25
    if k not in OPENPOSE_LAYOUTS:
        raise InputDataError(f"{folder}: {k} points per person; known OpenPose layouts: "
                             + ", ".join(f"{n} ({name})" for n, name in OPENPOSE_LAYOUTS.items()))
    if len(named) > 1:
        raise InputDataError(f"{folder}: files name different keypoint sources ({', '.join(sorted(named))})")
    layout = OPENPOSE_LAYOUTS[k]
    source = named.pop() if named else layout
    if source != layout:
        names_of(source)  # an unknown source is an error naming the known layouts
        per_camera = {c: {n: [(convert(p, layout, source), sc) for p, sc in people] for n, people in frames.items()}
                      for c, frames in per_camera.items()}
    return per_camera, source


def import_keypoints(folder: str | os.PathLike, fmt: str, *, num_frames: int | None = None, fps: float = float("nan"),
                     image_sizes: dict[str, tuple[int, int]] | None = None,
                     cameras: tuple[str, ...] | None = None) -> Detections2D:
    """Read another tool's keypoints from ``folder`` (``fmt``: "openpose" or "coco"): every person of every frame.

    ``cameras`` (e.g. a session's) restricts and orders the views and must all be found; ``num_frames``
    fixes the frame count (files beyond it are an error); image sizes unknown to the files are 0.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(f"{folder}: folder not found")
    sizes: dict[str, tuple[int, int]] = dict(image_sizes or {})
    if fmt == "openpose":
        per_camera, layout = _openpose_sources(folder)
    elif fmt == "coco":
        files = sorted(folder.glob("*.json"))
        if not files:
            raise InputDataError(f"{folder}: no <camera>.json COCO keypoint files")
        per_camera = {}
        for path in files:
            per_camera[path.stem], size = _read_coco_camera(path)
            if size is not None:
                sizes.setdefault(path.stem, size)
        layout = "coco17"
    else:
        raise InputDataError(f"unknown import format {fmt!r}; use openpose or coco")

    if cameras is not None:
        missing = [c for c in cameras if c not in per_camera]
        if missing:
            raise InputDataError(f"{folder}: no keypoints for camera(s) {', '.join(missing)}; found {', '.join(per_camera)}")
        per_camera = {c: per_camera[c] for c in cameras}
    numbers = [n for frames in per_camera.values() for n in frames]
    first = min(numbers) if fmt == "openpose" else 0  # COCO frame ids are taken as they are
    F = num_frames if num_frames is not None else max(numbers) - first + 1
    if max(numbers) - first >= F:
        raise InputDataError(f"{folder}: frame {max(numbers)} found, but the session has {F} frames (from {first})")
    K = len(names_of(layout))
    P = max([len(people) for frames in per_camera.values() for people in frames.values()] + [1])
    kp = np.full((F, len(per_camera), P, K, 3), np.nan, np.float32)
    kp[..., 2] = 0.0
    scores = np.full((F, len(per_camera), P), np.nan, np.float32)
    for v, frames in enumerate(per_camera.values()):
        for n, people in frames.items():
            for p, (pts, score) in enumerate(people):
                kp[n - first, v, p] = pts
                scores[n - first, v, p] = score
    boxes = np.where(np.isfinite(scores)[..., None], box_from_keypoints(kp, min_confidence=1e-6), np.nan)
    if not np.isfinite(scores).any():
        raise InputDataError(f"{folder}: no person in any frame of any camera ({len(numbers)} files read); "
                             "check that the other tool's output holds keypoints")
    cams = tuple(per_camera)
    return Detections2D(
        cameras=cams, keypoints=kp, boxes=boxes, scores=scores,
        image_sizes=[sizes.get(c, (0, 0)) for c in cams], format=layout, names=names_of(layout), fps=fps,
        meta={"detector": f"import:{fmt}", "source": str(folder.resolve()), "first_frame_number": first},
        view_meta=tuple({"frames_with_file": len(per_camera[c])} for c in cams),
    )


def export_layout(source: str, layout: str | None = None) -> str:
    """The OpenPose layout to write keypoints of layout ``source`` in: ``layout`` if given (BODY_25, COCO-18, or
    the source's own 33 BlazePose points), else the source itself when it is one of OpenPose's own (BODY_25,
    COCO-18), else BODY_25, which every OpenPose reader knows."""
    if layout is None:
        return source if source in ("body25", "coco18") else "body25"
    if layout not in OPENPOSE_LAYOUTS.values():
        raise InputDataError(f"--layout {layout}: use one of {', '.join(OPENPOSE_LAYOUTS.values())}")
    if layout == "blazepose33" and source != "blazepose33":
        raise InputDataError(f"--layout blazepose33: the keypoints are {source}, not BlazePose's")
    return layout


def _frame_file(people: np.ndarray, header: dict) -> str:
    """One OpenPose JSON file: ``people`` (P, K, 3) with "not found" as 0, 0, 0."""
    empty = {key: [] for key in ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
                                 "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d",
                                 "hand_right_keypoints_3d")}
    return json.dumps({"version": 1.3, **header, "people": [
        {"person_id": [-1], "pose_keypoints_2d": [round(float(x), 3) for x in pts.ravel()], **empty} for pts in people]})


def export_openpose(det: Detections2D | Keypoints2D, folder: str | os.PathLike, layout: str | None = None) -> list[Path]:
    """Write OpenPose JSON, one folder per camera: ``folder/<camera>_json/<camera>_<frame:012d>_keypoints.json``,
    every person of every frame (most confident first).

    ``layout``: see :func:`export_layout`. Points the layout has and the source lacks (BlazePose's small toes in
    BODY_25) are 0, 0, 0 (OpenPose's "not found") and listed in ``absent_keypoints``; the source layout is
    recorded as ``keypoint_source`` (module docstring). Each camera folder is written to a temporary folder and
    renamed into place (`atomic_folder`).
    """
    if isinstance(det, Keypoints2D):
        det = Detections2D.from_keypoints(det)
    folder = Path(folder)
    layout = export_layout(det.format, layout)
    points = convert(det.keypoints, det.format, layout)
    points = np.where(np.isfinite(points) & (points[..., 2:3] > 0), points, 0.0)
    header = {"keypoint_source": det.format}
    filled = convert(np.ones((len(det.names), 3), np.float32), det.format, layout)[:, 2] > 0
    absent = [n for n, ok in zip(names_of(layout), filled) if not ok]
    if absent:
        header["absent_keypoints"] = absent
    order = np.argsort(-np.where(det.present, det.scores, -np.inf), axis=2, kind="stable")
    written = []
    ensure_folder(folder)
    for v, cam in enumerate(det.cameras):
        final = folder / f"{cam}_json"
        with atomic_folder(final) as tmp:
            for f in range(det.num_frames):
                slots = [p for p in order[f, v] if det.present[f, v, p]]
                (tmp / f"{cam}_{f:012d}_keypoints.json").write_text(_frame_file(points[f, v, slots], header))
        written.append(final)
    return written
