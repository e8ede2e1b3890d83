"""Keypoints from other tools: OpenPose JSON folders (BODY_25, COCO-18) and COCO keypoint JSON, in and out.

OpenPose writes one JSON file per frame and camera, ``{"people": [{"pose_keypoints_2d": [x, y, c, ...]}]}``
with ``x = y = c = 0`` for a point not found; Pose2Sim, EasyMocap and anipose read and write the same.
Layouts understood on import::

    DIR/<camera>[_json]/<anything><frame number>[_keypoints].json     --format openpose (BODY_25 or COCO-18)
    DIR/<camera>.json                                                 --format coco (17 points)

A COCO file is either a dataset (``images`` + ``annotations``; the frame is the last number in each
image's ``file_name``) or a results list (``[{"image_id": frame, "keypoints": [...], "score": s}]``).

The frame of an OpenPose file is the last number in its name, counted from the smallest number over all
cameras; missing files and empty ``people`` give NaN frames with ``detected = 0``, so frames never shift.
Several people in one frame: the one with the largest summed confidence is kept (this pipeline follows
one person). Points with confidence 0 become NaN.
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
from mocap.io.keypoints_h5 import Keypoints2D

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


def _best_person(people: list[np.ndarray]) -> np.ndarray | None:
    """(K, 3) of the most confident person, zeros (not found) as NaN; None when nobody has a point."""
    people = [p for p in people if (p[:, 2] > 0).any()]
    if not people:
        return None
    best = max(people, key=lambda p: float(p[:, 2].sum())).astype(np.float32)
    best[best[:, 2] <= 0] = (np.nan, np.nan, 0.0)
    return best


def _as_points(flat, k: int | None, where: str) -> np.ndarray:
    arr = np.asarray(flat, dtype=np.float64)
    if arr.ndim != 1 or arr.size % 3 or (k is not None and arr.size != 3 * k):
        raise InputDataError(f"{where}: keypoints list of length {arr.size}, expected {3 * k if k else 'a multiple of 3'}")
    return arr.reshape(-1, 3)


def _read_openpose_camera(folder: Path) -> tuple[dict[int, np.ndarray | None], int | None]:
    """frame number -> (K, 3) or None, and the number of points per person (None when nobody was seen)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() == ".json"]
    if not files:
        raise InputDataError(f"{folder}: no OpenPose .json files")
    frames: dict[int, np.ndarray | None] = {}
    k = None
    for path in files:
        n = _frame_number(path.name, folder)
        if n in frames:
            raise InputDataError(f"{path}: a second file for frame {n} in {folder}")
        data = _load_json(path)
        people = data.get("people") if isinstance(data, dict) else None
        if not isinstance(people, list):
            raise InputDataError(f"{path}: not an OpenPose file (no 'people' list)")
        points = []
        for person in people:
            pts = _as_points(person.get("pose_keypoints_2d", []), k, str(path))
            if pts.size:
                k = len(pts)
                points.append(pts)
        frames[n] = _best_person(points)
    return frames, k


def _read_coco_camera(path: Path) -> tuple[dict[int, np.ndarray | None], tuple[int, int] | None]:
    """frame number -> (17, 3) or None, and the image size when the file says it."""
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
        except (KeyError, TypeError, ValueError) as e:
            raise InputDataError(f"{path}: bad annotation {str(ann)[:80]} ({e!r})") from None
        frames.setdefault(frame, []).append(pts)
    return {f: _best_person(p) for f, p in frames.items()}, size


def import_keypoints(folder: str | os.PathLike, fmt: str, *, num_frames: int | None = None, fps: float = float("nan"),
                     image_sizes: dict[str, tuple[int, int]] | None = None,
                     cameras: tuple[str, ...] | None = None) -> Keypoints2D:
    """Read another tool's keypoints from ``folder`` (``fmt``: "openpose" or "coco") into one Keypoints2D.

    ``cameras`` (e.g. a session's) restricts and orders the views and must all be found; ``num_frames``
    fixes the frame count (files beyond it are an error); image sizes unknown to the files are 0.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(f"{folder}: folder not found")
    per_camera: dict[str, dict[int, np.ndarray | None]] = {}
    sizes: dict[str, tuple[int, int]] = dict(image_sizes or {})
    if fmt == "openpose":
        subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and any(q.suffix == ".json" for q in p.iterdir()))
        sources = {re.sub(r"_json$", "", p.name): p for p in subdirs} or {folder.name: folder}
        layouts = {}
        for cam, path in sources.items():
            per_camera[cam], layouts[cam] = _read_openpose_camera(path)
        ks = {k for k in layouts.values() if k is not None}
        if len(ks) > 1:
            raise InputDataError(f"{folder}: cameras disagree on the keypoint layout ({layouts})")
        k = ks.pop() if ks else 25
        if k not in OPENPOSE_LAYOUTS:
            raise InputDataError(f"{folder}: {k} points per person; known OpenPose layouts: "
                                 + ", ".join(f"{n} ({name})" for n, name in OPENPOSE_LAYOUTS.items()))
        layout = OPENPOSE_LAYOUTS[k]
    elif fmt == "coco":
        files = sorted(folder.glob("*.json"))
        if not files:
            raise InputDataError(f"{folder}: no <camera>.json COCO keypoint files")
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
    kp = np.full((F, len(per_camera), K, 3), np.nan, np.float32)
    kp[..., 2] = 0.0
    detected = np.zeros((F, len(per_camera)), bool)
    for v, frames in enumerate(per_camera.values()):
        for n, pts in frames.items():
            if pts is not None:
                kp[n - first, v] = pts
                detected[n - first, v] = True
    if not detected.any():
        raise InputDataError(f"{folder}: no person in any frame of any camera ({len(numbers)} files read); "
                             "check that the other tool's output holds keypoints")
    cams = tuple(per_camera)
    return Keypoints2D(
        cameras=cams, keypoints=kp, boxes=box_from_keypoints(kp, min_confidence=1e-6), detected=detected,
        image_sizes=[sizes.get(c, (0, 0)) for c in cams], format=layout, names=names_of(layout), fps=fps,
        meta={"detector": f"import:{fmt}", "source": str(folder.resolve()), "first_frame_number": first},
        view_meta=tuple({"frames_with_file": len(per_camera[c])} for c in cams),
    )


def export_openpose(kp: Keypoints2D, folder: str | os.PathLike) -> list[Path]:
    """Write OpenPose JSON, one folder per camera: ``folder/<camera>_json/<camera>_<frame:012d>_keypoints.json``.

    BODY_25 or COCO-18 keypoints are written as they are; other layouts are converted to BODY_25 (points
    BODY_25 has and they lack, e.g. BlazePose's small toes, are written as 0). Each camera folder is
    written to a temporary folder and renamed into place (`atomic_folder`).
    """
    folder = Path(folder)
    layout = kp.format if kp.format in OPENPOSE_LAYOUTS.values() else "body25"
    points = convert(kp.keypoints, kp.format, layout)
    points = np.where(np.isfinite(points) & (points[..., 2:3] > 0), points, 0.0)
    written = []
    ensure_folder(folder)
    for v, cam in enumerate(kp.cameras):
        final = folder / f"{cam}_json"
        with atomic_folder(final) as tmp:
            for f in range(kp.num_frames):
                people = []
                if kp.detected[f, v]:
                    people.append({"person_id": [-1], "pose_keypoints_2d": [round(float(x), 3) for x in points[f, v].ravel()],
                                   **{key: [] for key in ("face_keypoints_2d", "hand_left_keypoints_2d",
                                                          "hand_right_keypoints_2d", "pose_keypoints_3d",
                                                          "face_keypoints_3d", "hand_left_keypoints_3d",
                                                          "hand_right_keypoints_3d")}})
                (tmp / f"{cam}_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
        written.append(final)
    return written
