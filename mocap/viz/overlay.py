"""The fitted body drawn over the footage: per-view MP4s (H.264), a grid of all views, and stills.

Each frame shows the body mesh (flat-shaded or wireframe) projected through the session's calibration,
the detector's keypoints (green circles) and the same keypoints on the fitted body (magenta crosses), joined
by a thin line: a long line is where the fit and the detector disagree.

Everything is drawn at the output resolution, never at the footage's: frames are decoded straight to the
video's size (:func:`mocap.io.video.read_frames_resized`) and the projections are mapped to it. The shaded
mesh goes through a z-buffer rasteriser in numpy (:func:`mocap.viz.raster.rasterise`), a few array operations
per view and frame instead of one OpenCV call per face, on a mesh decimated by vertex clustering (a few
thousand faces, indistinguishable at video resolution).
Pixels are as in :mod:`mocap.cameras` ((0, 0) = centre of the top-left pixel); images are BGR uint8 (H, W, 3).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from mocap.cameras import Camera, project, project_camera_points, world_to_camera
from mocap.errors import InputDataError
from mocap.io.atomic import atomic_path, write_text
from mocap.viz.grid import even, fit_grid, grid_shape, tile
from mocap.viz.manifest import MANIFEST, STILL_BOX
from mocap.viz.raster import decimate_faces, outward_faces, rasterise

DETECTED_BGR = (60, 220, 60)
FITTED_BGR = (230, 60, 230)
MESH_BGR = np.array((235, 190, 130), dtype=np.float64)  # light blue
#: Mesh colours of the other people fitted (output/people/<id>), by id; the main subject keeps MESH_BGR.
PERSON_BGR = np.array(((80, 160, 255), (120, 230, 120), (200, 120, 230), (90, 220, 230), (230, 120, 120)), np.float64)
_SHIFT = 4  # sub-pixel bits for OpenCV drawing: vertices at 1/16 px


def _fixed(uv: np.ndarray) -> np.ndarray:
    return np.round(uv * (1 << _SHIFT)).astype(np.int32)


def to_image(uv: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Footage pixels ``(..., 2)`` -> pixels of the footage resized by ``scale`` (sx, sy), centre convention kept."""
    return (uv + 0.5) * np.asarray(scale, dtype=np.float64) - 0.5


def draw_mesh(image: np.ndarray, camera: Camera, vertices: np.ndarray, faces: np.ndarray, style: str = "shaded",
              alpha: float = 0.6, scale: tuple[float, float] = (1.0, 1.0), colour: np.ndarray = MESH_BGR) -> np.ndarray:
    """Draw the mesh ``vertices`` (V, 3) world, ``faces`` (M, 3) outward-wound, over ``image`` in place.

    ``image`` is the camera's footage resized by ``scale`` (sx, sy). ``shaded``: the front faces z-buffered,
    lit from the camera, blended with ``alpha``. ``wireframe``: the edges of front faces. Faces with a vertex
    behind the camera are skipped.
    """
    if style not in ("shaded", "wireframe"):
        raise InputDataError(f"unknown overlay style {style!r}; use shaded or wireframe")
    import cv2

    Xc = world_to_camera(np.asarray(vertices, np.float64), camera.R, camera.t)
    uv = to_image(project_camera_points(Xc, camera.K, camera.dist), scale)
    a, b, c = Xc[faces.T]  # each (M, 3): the faces' corners
    normal = np.cross(b - a, c - a)
    facing = -np.einsum("ij,ij->i", normal, a)  # > 0: the face looks at the camera (a: any point of its plane)
    # In front of the camera the projection is finite; NaN vertices fail the depth test.
    z = Xc[:, 2] > 1e-3
    ok = z[faces].all(1) & (facing > 0)
    if not ok.any():
        return image
    faces, normal, facing = faces[ok], normal[ok], facing[ok]
    centre = (a[ok] + b[ok] + c[ok]) / 3
    if style == "wireframe":
        cv2.polylines(image, list(_fixed(uv[faces])), True, tuple(int(c) for c in colour), 1, cv2.LINE_AA, _SHIFT)
        return image
    ids, (x0, y0) = rasterise(uv[faces], 1.0 / Xc[faces, 2], image.shape[1::-1])
    if not ids.size:
        return image
    # Lambert with a light at the camera: cosine between the face normal and the ray to the face.
    cos = facing / (np.linalg.norm(normal, axis=1) * np.linalg.norm(centre, axis=1) + 1e-12)
    colours = (np.asarray(colour, np.float64)[None] * (0.35 + 0.65 * np.clip(cos, 0, 1))[:, None]).astype(np.uint8)
    block = image[y0:y0 + ids.shape[0], x0:x0 + ids.shape[1]]
    # ids -1 pick the last colour, masked out by the copy; np.take and cv2.copyTo take a tenth of the time of
    # fancy indexing and np.copyto(where=).
    blended = cv2.addWeighted(np.take(colours, ids, axis=0, mode="wrap"), alpha, block, 1 - alpha, 0)
    cv2.copyTo(blended, (ids >= 0).view(np.uint8), block)
    return image


def draw_keypoints(image: np.ndarray, detected: np.ndarray | None, fitted: np.ndarray | None,
                   min_confidence: float = 0.3, radius: int = 4) -> np.ndarray:
    """Detected keypoints (K, 3) x, y, confidence as green circles; fitted ones (K, 2) as magenta crosses,
    each joined to its detection. Keypoints below ``min_confidence`` or NaN are not drawn."""
    import cv2

    det_ok = np.zeros(0, dtype=bool)
    if detected is not None:
        det_ok = np.isfinite(detected).all(1) & (detected[:, 2] >= min_confidence)
    fit_ok = np.isfinite(fitted).all(1) if fitted is not None else np.zeros(0, dtype=bool)
    # Lines and crosses go to OpenCV as one polyline list each: one call per kind, not per keypoint.
    if detected is not None and fitted is not None and (pair := det_ok & fit_ok).any():
        lines = _fixed(np.stack([fitted[pair, :2], detected[pair, :2]], 1))
        cv2.polylines(image, list(lines), False, (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)
    for c in _fixed(detected[det_ok, :2]) if det_ok.any() else ():
        cv2.circle(image, (int(c[0]), int(c[1])), radius << _SHIFT, DETECTED_BGR, 2, cv2.LINE_AA, _SHIFT)
    if fit_ok.any():
        d = radius << _SHIFT
        c = _fixed(fitted[fit_ok, :2])[:, None]
        arms = np.concatenate([c + [[-d, -d], [d, d]], c + [[-d, d], [d, -d]]]).astype(np.int32)
        cv2.polylines(image, list(arms), False, FITTED_BGR, 2, cv2.LINE_AA, _SHIFT)
    return image


def draw_legend(image: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]], scale: float = 1.0) -> np.ndarray:
    """Coloured labels in a dark box at the top-left corner."""
    import cv2

    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, max(1, round(scale))
    h = int(22 * scale)
    width = max(cv2.getTextSize(t, font, fs, th)[0][0] for t, _ in lines) + int(16 * scale)
    x0, y0 = int(8 * scale), int(8 * scale)
    box = image[y0:y0 + h * len(lines) + int(8 * scale), x0:x0 + width]
    box[:] = (box * 0.35).astype(np.uint8)
    for i, (text, colour) in enumerate(lines):
        cv2.putText(image, text, (x0 + int(8 * scale), y0 + h * (i + 1) - int(4 * scale)), font, fs, colour, th, cv2.LINE_AA)
    return image


def render_overlay_frame(image: np.ndarray, camera: Camera, vertices: np.ndarray | None = None,
                         faces: np.ndarray | None = None, detected: np.ndarray | None = None,
                         fitted_points: np.ndarray | None = None, style: str = "shaded", alpha: float = 0.6,
                         min_confidence: float = 0.3, label: str | None = None, legend: bool = True,
                         scale: tuple[float, float] = (1.0, 1.0), text_scale: float | None = None) -> np.ndarray:
    """One overlay frame: a new image (``image`` is not modified).

    Args:
        image: (H, W, 3) BGR uint8 footage of ``camera``, resized by ``scale`` (sx, sy) from the footage's size.
        vertices: (V, 3) world vertices of the fitted body, or None / NaN (no fit this frame).
        faces: (M, 3) faces to draw (decimated and outward-wound, see :func:`decimate_faces`).
        detected: (K, 3) detected keypoints (footage pixels, confidence) of this view, or None.
        fitted_points: (K, 3) world positions of the same keypoints on the fitted body, or None.
        label: text drawn at the bottom-left (camera and frame).
        text_scale: size of the legend and label (default: from the image height).
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    has_fit = vertices is not None and np.isfinite(vertices).all()
    if has_fit and faces is not None:
        draw_mesh(out, camera, vertices, faces, style, alpha, scale)
    fitted_uv = None
    if fitted_points is not None and np.isfinite(fitted_points).all():
        fitted_uv = to_image(project(fitted_points.astype(np.float64), camera.K, camera.dist, camera.R, camera.t), scale)
        fitted_uv[world_to_camera(fitted_points.astype(np.float64), camera.R, camera.t)[:, 2] <= 1e-3] = np.nan
    if detected is not None:
        detected = np.concatenate([to_image(detected[:, :2], scale), detected[:, 2:]], 1)
    draw_keypoints(out, detected, fitted_uv, min_confidence, radius=max(3, round(out.shape[0] / 300)))
    ts = text_scale if text_scale is not None else max(0.8, out.shape[0] / 720)
    if legend:
        lines = [("body mesh (fit)", tuple(int(c) for c in MESH_BGR)), ("detected keypoints", DETECTED_BGR),
                 ("fitted body keypoints", FITTED_BGR)]
        if not has_fit:
            lines.append(("no fit in this frame", (80, 80, 255)))
        draw_legend(out, lines, ts)
    if label:
        cv2.putText(out, label, (int(10 * ts), out.shape[0] - int(12 * ts)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6 * ts, (255, 255, 255), max(1, round(ts)), cv2.LINE_AA)
    return out


@dataclass(frozen=True)
class OverlayOutputs:
    views: dict[str, Path]  # camera -> MP4
    grid: Path
    frames: int
    stills: dict[int, Path]  # frame -> PNG of all views (the report's stills)
    codec: str  # "h264", or "mp4v" without PyAV's encoder


@dataclass(frozen=True, eq=False)
class OverlayScene:
    """What the overlays of a session draw, for the frames ``frames`` (F',)."""

    session: object  # mocap.session.Session
    rig: object  # CameraRig
    cameras: tuple[str, ...]
    frames: np.ndarray  # (F',) frame indices, increasing
    faces: np.ndarray  # (M, 3) decimated, outward, indexing ``vertices``
    vertices: np.ndarray  # (F', V', 3) world, the decimated mesh's vertices; NaN for frames without a fit
    points: np.ndarray | None  # (F', K, 3) world keypoints of the fitted body, detector format
    detections: np.ndarray | None  # (F, V, K, 3) detected keypoints, all frames
    style: str
    person: int | None = None  # the main subject's id when the session has several people
    others: tuple = ()  # ((id, (F', V, 3) world vertices), ...) of the other people fitted

    def footage_size(self, camera: str) -> tuple[int, int]:
        info = next(v.info for v in self.session.views if v.camera == camera)
        return info.width, info.height

    def footage(self, sizes: dict[str, tuple[int, int]], preview: bool = False) -> Iterator[tuple[int, int, list[np.ndarray]]]:
        """(position in ``frames``, frame index, per-view footage resized to ``sizes[camera]`` (w, h)), frame by frame;
        each video is decoded once, from the first frame drawn to the last."""
        from mocap.io.video import read_frames_resized

        views = {v.camera: v for v in self.session.views}
        start, stop = int(self.frames[0]), int(self.frames[-1]) + 1
        readers = [read_frames_resized(views[c].info.path, sizes[c], start, stop, preview) for c in self.cameras]
        n = 0
        for f in range(start, stop):
            images = [next(r) for r in readers]
            if f == self.frames[n]:
                yield n, f, images
                n += 1

    def draw(self, n: int, v: int, image: np.ndarray, legend: bool = True, text_scale: float | None = None) -> np.ndarray:
        """Frame ``frames[n]`` of view ``v`` drawn over ``image`` (that view's footage at any size)."""
        c = self.cameras[v]
        w, h = self.footage_size(c)
        f = int(self.frames[n])
        det = self.detections[f, v] if self.detections is not None else None
        pts = self.points[n] if self.points is not None else None
        scale = (image.shape[1] / w, image.shape[0] / h)
        out = render_overlay_frame(image, self.rig[c], self.vertices[n], self.faces, det, pts, self.style,
                                   label=f"{c}  frame {f}", legend=legend, scale=scale, text_scale=text_scale)
        for pid, verts in self.others:  # the other people fitted: their own colour, and every body its id
            if np.isfinite(verts[n]).all():
                draw_mesh(out, self.rig[c], verts[n], self.faces, self.style, scale=scale,
                          colour=PERSON_BGR[pid % len(PERSON_BGR)])
        if self.others:
            for pid, verts, colour in [(self.person, self.vertices, MESH_BGR)] + [
                    (pid, v, PERSON_BGR[pid % len(PERSON_BGR)]) for pid, v in self.others]:
                _person_label(out, self.rig[c], verts[n], f"id {pid}", colour, scale)
        return out

    def images(self, sizes: dict[str, tuple[int, int]] | None = None) -> Iterator[tuple[int, list[np.ndarray]]]:
        """(frame index, per-view overlay images at ``sizes`` (footage resolution by default)), frame by frame."""
        sizes = sizes or {c: self.footage_size(c) for c in self.cameras}
        for n, f, footage in self.footage(sizes):
            yield f, [self.draw(n, v, img) for v, img in enumerate(footage)]

    def still(self, n: int, footage: Sequence[np.ndarray], box: tuple[int, int] = STILL_BOX) -> np.ndarray:
        """All views of ``frames[n]`` in one image that fits ``box`` (w, h), each view drawn at its cell's size."""
        import cv2

        aspect = max(w / h for w, h in map(self.footage_size, self.cameras))
        shape, cell = fit_grid(len(self.cameras), aspect, box)
        drawn = []
        for v, img in enumerate(footage):
            w, h = self.footage_size(self.cameras[v])
            s = min(cell[0] / w, cell[1] / h)
            small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            drawn.append(self.draw(n, v, small, legend=False, text_scale=max(0.9, cell[1] / 450)))
        return tile(drawn, cell, shape)


def _person_label(image: np.ndarray, camera: Camera, vertices: np.ndarray, text: str, colour,
                  scale: tuple[float, float]) -> None:
    """``text`` above the projected body (nothing when the body is absent or behind the camera)."""
    import cv2

    if not np.isfinite(vertices).all() or (world_to_camera(vertices, camera.R, camera.t)[:, 2] <= 1e-3).any():
        return
    uv = to_image(project(vertices.astype(np.float64), camera.K, camera.dist, camera.R, camera.t), scale)
    scale = max(0.8, image.shape[0] / 720)
    x, y = int(np.median(uv[:, 0])), int(uv[:, 1].min() - 10 * scale)
    cv2.putText(image, text, (x, max(y, int(30 * scale))), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale,
                tuple(int(c) for c in colour), max(2, round(2 * scale)), cv2.LINE_AA)


def _person_keypoints(path: Path, cams: tuple[str, ...], result):
    """The fitted person's own detections in ``cams`` (``detection_slots`` of a fit of several people), else
    the most confident detection of each view."""
    from mocap.io.keypoints_h5 import read_detections, read_keypoints

    fitted = tuple(str(c) for c in result.extra.get("camera_names", ()))
    if "detection_slots" not in result.extra or not set(cams) <= set(fitted):
        return read_keypoints(path, cams, occluders=False)
    slots = np.asarray(result.extra["detection_slots"])
    det = read_detections(path, list(fitted))
    if det.num_frames != len(slots):
        return read_keypoints(path, cams, occluders=False)
    return det.pick(slots, occluders=False).select(cams)


def _other_people(session, result, body, idx: np.ndarray, used: np.ndarray) -> tuple[int | None, tuple]:
    """The main subject's id and the other fitted people's vertices ``used`` (the decimated mesh's) at frames
    ``idx``, from output/people/<id>/smpl.npz; their own shapes, the main subject's faces."""
    from mocap.viz.result import body_vertices, load_result

    if "person" not in result.extra:
        return None, ()
    main = int(result.extra["person"])
    others = []
    for path in sorted((session.output_dir / "people").glob("*/smpl.npz")):
        if path.parent.name.isdigit() and int(path.parent.name) != main:
            other = load_result(path)
            others.append((int(path.parent.name), body_vertices(body, other, used, idx)))
    return main, tuple(others)


def load_scene(session_dir: str | os.PathLike, style: str = "shaded",
               frames: slice | Sequence[int] | None = None) -> OverlayScene:
    """Read the session's calibration, detections and fitted sequence, and pose the body at ``frames`` (a slice
    or indices; all by default)."""
    from mocap.io.calibration_toml import load_rig
    from mocap.session import Session
    from mocap.viz.result import body_for_result, body_vertices, keypoints_world, load_result

    if style not in ("shaded", "wireframe"):
        raise InputDataError(f"unknown overlay style {style!r}; use shaded or wireframe")
    session = Session.load(session_dir)
    rig = load_rig(session.calibration_path)
    result = load_result(session.output("smpl"))
    body = body_for_result(result, session.config.body)
    cams = tuple(c for c in session.cameras if c in rig)
    if not cams:
        raise InputDataError(f"{session.calibration_path}: calibrates none of the cameras {', '.join(session.cameras)}")
    kp_path = session.output("keypoints")
    kp = _person_keypoints(kp_path, cams, result) if kp_path.is_file() else None
    F = min(session.num_frames, result.num_frames)
    if frames is None or isinstance(frames, slice):
        idx = np.arange(F)[frames or slice(None)]
    else:
        idx = np.unique(np.asarray([f for f in frames if 0 <= f < F], dtype=np.int64))
    if len(idx) == 0:
        raise InputDataError(f"no frame to draw: the session has {session.num_frames} frames, the fit {result.num_frames}")
    rest = body.shaped(result.betas)[1]
    # Wireframes need larger faces than shading to stay readable.
    cell_m = 0.025 if style == "shaded" else 0.05
    faces = outward_faces(rest, decimate_faces(rest, body.faces, cell_m))
    # Only the decimated mesh's vertices are kept (about a fifth): less to project per view and to hold.
    used, faces = np.unique(faces, return_inverse=True)
    points = keypoints_world(body, result, kp.format, idx) if kp is not None else None
    return OverlayScene(session, rig, cams, idx, faces.reshape(-1, 3), body_vertices(body, result, used, idx),
                        points, kp.keypoints if kp is not None else None, style,
                        *_other_people(session, result, body, idx, used))


def write_overlays(session_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, style: str = "shaded",
                   frames: slice | Sequence[int] | None = None, scale: float = 0.5, grid_height: int = 1080,
                   progress: Callable[[int, int], None] | None = None,
                   stills: Sequence[int] | None = None) -> OverlayOutputs:
    """Write ``<out_dir>/<camera>.mp4`` per view, ``<out_dir>/grid.mp4`` (default ``output/overlay``), the stills
    ``<out_dir>/stills/frame_<f>.png`` and ``<out_dir>/overlay.json`` (what was drawn, from which fit).

    Reads the session's footage, ``calibration.toml``, ``output/keypoints2d.h5`` (optional) and
    ``output/smpl.npz``. ``scale`` resizes the per-view videos (1 = footage resolution); ``frames`` (a slice or
    indices) selects frames, all by default; ``stills``: frames to save as stills (default: the report's,
    :func:`mocap.viz.quality.still_frames`), among those drawn.
    """
    import cv2

    from mocap.io.video_writer import video_writers
    from mocap.viz.quality import still_frames
    from mocap.viz.result import load_result

    wall, cpu = time.perf_counter(), time.process_time()
    scene = load_scene(session_dir, style, frames)
    session, cams = scene.session, scene.cameras
    out_dir = Path(out_dir) if out_dir is not None else session.output_dir / "overlay"
    sizes = {c: tuple(even(n * scale) for n in scene.footage_size(c)) for c in cams}
    rows, cols = grid_shape(len(cams))
    aspect = max(w / h for w, h in sizes.values())
    cell = (even(grid_height / rows * aspect), even(grid_height / rows))
    paths = {c: out_dir / f"{c}.mp4" for c in cams}
    specs = {**{c: (paths[c], sizes[c]) for c in cams}, "grid": (out_dir / "grid.mp4", (cell[0] * cols, cell[1] * rows))}
    if stills is None:
        stills = still_frames(load_result(session.output("smpl")), session.num_frames)
    want = set(int(f) for f in stills) & set(scene.frames.tolist())
    still_paths: dict[int, Path] = {}
    # Preview decoding (no deblocking) only where the video shrinks the footage enough to hide it.
    preview = scale <= 0.5
    # One OpenCV thread: on frames this small its workers cost 4 % more CPU than they save in time.
    with video_writers(specs, session.fps or 30.0) as writers, contextlib.ExitStack() as threads:
        threads.callback(cv2.setNumThreads, cv2.getNumThreads())
        cv2.setNumThreads(1)
        for n, f, footage in scene.footage(sizes, preview):
            drawn = [scene.draw(n, v, img) for v, img in enumerate(footage)]
            for c, img in zip(cams, drawn):
                writers[c].write(img)
            writers["grid"].write(tile(drawn, cell))
            if f in want:
                still_paths[f] = _write_png(out_dir / "stills" / f"frame_{f:06d}.png", scene.still(n, footage))
            if progress:
                progress(n + 1, len(scene.frames))
    codec = next(iter(writers.values())).codec
    manifest = {"fit": str(session.output("smpl").resolve()), "frames": [int(scene.frames[0]), int(scene.frames[-1]) + 1],
                "drawn": len(scene.frames), "codec": codec, "style": style,
                "stills": {str(f): p.relative_to(out_dir).as_posix() for f, p in sorted(still_paths.items())},
                "seconds": round(time.perf_counter() - wall, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}
    write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2))
    return OverlayOutputs(paths, out_dir / "grid.mp4", len(scene.frames), still_paths, codec)


def _write_png(path: Path, image: np.ndarray) -> Path:
    import cv2

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise InputDataError(f"{path}: cannot write a PNG here")
    return path
