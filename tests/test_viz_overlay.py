"""Overlay frames against independent projections (cv2.projectPoints) and coverage by distance transform."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from mocap.viz.grid import grid_shape  # noqa: E402
from mocap.viz.overlay import DETECTED_BGR, FITTED_BGR, render_overlay_frame, write_overlays  # noqa: E402
from mocap.viz.raster import decimate_faces, outward_faces, rasterise  # noqa: E402
from mocap.io.video_writer import h264_available  # noqa: E402
from mocap.viz.manifest import STILL_BOX  # noqa: E402
from mocap.viz.quality import still_frames  # noqa: E402
from mocap.viz.result import load_result  # noqa: E402
from tests.browser import needs_chromium, play  # noqa: E402
from tests.viz_data import look_at, make_session  # noqa: E402


@pytest.fixture(scope="module")
def body_mesh():
    from mocap.body.model import load_body

    body = load_body("open")
    with torch.no_grad():
        out = body.forward(torch.zeros(1, 3), torch.zeros(1, 23, 3), torch.zeros(1, 10), torch.zeros(1, 3))
    V = out.vertices[0].double().numpy()
    return V, np.asarray(body.faces, dtype=np.int64)


def _cv_project(cam, X):
    rvec = cv2.Rodrigues(cam.R)[0]
    return cv2.projectPoints(X.reshape(-1, 1, 3), rvec, cam.t, cam.K, cam.dist)[0].reshape(-1, 2)


def test_decimation_is_a_coarser_mesh_over_original_vertices(body_mesh):
    V, F = body_mesh
    D = decimate_faces(V, F, 0.025)
    assert 1000 < len(D) < len(F) / 3
    assert D.max() < len(V) and D.min() >= 0
    assert (D[:, 0] != D[:, 1]).all() and (D[:, 1] != D[:, 2]).all()
    # The coarse surface stays on the body: every kept vertex is an original one, and the coarse mesh's
    # bounding box is the body's within one cell.
    used = V[np.unique(D)]
    assert np.abs(used.min(0) - V.min(0)).max() < 0.03 and np.abs(used.max(0) - V.max(0)).max() < 0.03


def test_outward_faces_give_positive_volume(body_mesh):
    V, F = body_mesh
    for faces in (F, F[:, ::-1]):
        out = outward_faces(V, faces)
        a, b, c = (V[out[:, i]] for i in range(3))
        assert np.einsum("ij,ij->i", a, np.cross(b, c)).sum() > 0


def test_mesh_covers_projected_vertices_and_nothing_far(body_mesh):
    V, F = body_mesh
    cam = look_at("c", (0.4, 0.3, 3.0), (0, -0.2, 0), (400, 480), 380.0, dist=np.array([-0.1, 0.02, 0, 0, 0]))
    faces = outward_faces(V, decimate_faces(V, F))
    img = render_overlay_frame(np.zeros((480, 400, 3), np.uint8), cam, V, faces, alpha=1.0, legend=False)
    covered = img.max(2) > 0
    # Independently: the union of the faces filled one by one by OpenCV from cv2.projectPoints. The z-buffer
    # samples pixel centres, OpenCV also fills pixels an edge only touches: they differ on the outline only.
    ref = np.zeros((480, 400), np.uint8)
    for tri in _cv_project(cam, V[faces.reshape(-1)]).reshape(-1, 3, 2):
        cv2.fillConvexPoly(ref, np.round(tri * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    kernel = np.ones((3, 3), np.uint8)
    assert not (covered & (cv2.dilate(ref, kernel) == 0)).any()
    inner = cv2.erode(ref, kernel) > 0
    # Measured: 2 of 7482 inner pixels missed, a pinhole of the decimated mesh where only a back face lies.
    assert inner.sum() > 6000 and (inner & ~covered).sum() <= 0.001 * inner.sum()
    # Independently: pixels farther than 3 px from every projected vertex of the full mesh stay untouched.
    near = np.zeros((480, 400), np.uint8)
    full = np.round(_cv_project(cam, V)).astype(int)
    near[np.clip(full[:, 1], 0, 479), np.clip(full[:, 0], 0, 399)] = 1
    dist = cv2.distanceTransform(1 - near, cv2.DIST_L2, 5)
    assert not covered[dist > 3].any()
    assert covered.sum() > 0.9 * (dist <= 1).sum()  # and the silhouette is filled, not just dotted


def test_rasterise_keeps_the_nearest_face_at_each_pixel_centre():
    # Against a brute-force z-buffer: every pixel centre tested against every triangle, depth from barycentrics.
    rng = np.random.default_rng(3)
    uv = rng.uniform([-8, -8], [72, 56], (40, 1, 2)) + rng.normal(0, 12, (40, 3, 2))
    z = rng.uniform(1.0, 5.0, (40, 3))
    ids, (x0, y0) = rasterise(uv, 1 / z, (64, 48))
    full = np.full((48, 64), -1)
    full[y0:y0 + ids.shape[0], x0:x0 + ids.shape[1]] = ids
    ys, xs = np.mgrid[0:48, 0:64]
    p = np.stack([xs, ys], -1).reshape(-1, 1, 2).astype(float)
    a, b, c = uv[None, :, 0], uv[None, :, 1], uv[None, :, 2]

    def cross(o, u, v):
        return (u[..., 0] - o[..., 0]) * (v[..., 1] - o[..., 1]) - (u[..., 1] - o[..., 1]) * (v[..., 0] - o[..., 0])

    area = cross(a, b, c)
    l0, l1, l2 = cross(p, b, c) / area, cross(a, p, c) / area, cross(a, b, p) / area
    inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
    inv = l0 / z[None, :, 0] + l1 / z[None, :, 1] + l2 / z[None, :, 2]  # 1/z is linear in the image
    brute = np.where(inside.any(1), np.argmax(np.where(inside, inv, -np.inf), 1), -1).reshape(48, 64)
    # Pixel centres exactly on an edge may go either way: none of these random triangles puts one there.
    edge = (np.abs(np.stack([l0, l1, l2])) < 1e-9).any((0, 2)).reshape(48, 64)
    assert (brute >= 0).sum() > 500
    np.testing.assert_array_equal(full[~edge], brute[~edge])


def test_wireframe_draws_edges_inside_the_silhouette(body_mesh):
    V, F = body_mesh
    cam = look_at("c", (0.0, 0.3, 3.0), (0, -0.2, 0), (1000, 1200), 1000.0)
    faces = outward_faces(V, decimate_faces(V, F, 0.05))  # the wireframe's coarser cells
    blank = np.zeros((1200, 1000, 3), np.uint8)
    shaded = render_overlay_frame(blank, cam, V, faces, alpha=1.0, legend=False).max(2) > 0
    wire = render_overlay_frame(blank, cam, V, faces, style="wireframe", legend=False).max(2) > 0
    grown = cv2.dilate(shaded.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert wire.sum() > 0.2 * shaded.sum() and (wire & ~grown).sum() == 0
    assert (shaded & ~wire).sum() > 0.3 * shaded.sum()  # edges, not filled faces


def _blob_centres(img, colour, points, window=8):
    """Centroid of pixels of ``colour`` (within 40 levels) in a window around each point."""
    match = (np.abs(img.astype(int) - np.array(colour)).max(2) < 40)
    out = []
    for x, y in points:
        x0, y0 = int(round(x)) - window, int(round(y)) - window
        ys, xs = np.nonzero(match[y0:y0 + 2 * window + 1, x0:x0 + 2 * window + 1])
        out.append((xs.mean() + x0, ys.mean() + y0) if len(xs) else (np.nan, np.nan))
    return np.array(out)


def test_keypoint_markers_land_where_projected():
    cam = look_at("c", (0.3, 0.5, 3.0), (0, 0, 0), (640, 480), 500.0, dist=np.array([0.05, 0, 0.001, 0, 0]))
    rng = np.random.default_rng(1)
    X = rng.uniform(-0.5, 0.5, (6, 3))
    uv = _cv_project(cam, X)
    # Keep the markers apart so that windows do not overlap.
    assert min(np.linalg.norm(uv[i] - uv[j]) for i in range(6) for j in range(i)) > 20
    detected = np.concatenate([uv + np.array([15.3, 0.0]), np.full((6, 1), 0.9)], 1)
    detected[5, 2] = 0.1  # below the confidence threshold: not drawn
    img = render_overlay_frame(np.zeros((480, 640, 3), np.uint8), cam, detected=detected, fitted_points=X, legend=False)
    fitted_c = _blob_centres(img, FITTED_BGR, uv, 6)
    np.testing.assert_allclose(fitted_c, uv, atol=0.6)
    det_c = _blob_centres(img, DETECTED_BGR, detected[:5, :2], 8)
    np.testing.assert_allclose(det_c, detected[:5, :2], atol=0.6)
    assert np.isnan(_blob_centres(img, DETECTED_BGR, detected[5:, :2], 8)).all()


def test_grid_shape():
    assert grid_shape(4) == (2, 2) and grid_shape(2) == (1, 2) and grid_shape(6) == (2, 3) and grid_shape(9) == (3, 3)


def test_write_overlays_videos(tmp_path):
    from mocap.io.video import probe

    make_session(tmp_path, cameras=3, frames=4)
    res = write_overlays(tmp_path, scale=1.0, grid_height=240)
    assert set(res.views) == {"cam0", "cam1", "cam2"} and res.frames == 4
    for path in [*res.views.values(), res.grid]:
        info = probe(path)
        assert info.frames == 4
    assert (probe(res.views["cam0"]).width, probe(res.views["cam0"]).height) == (320, 240)
    assert (probe(res.grid).width, probe(res.grid).height) == (2 * 160, 2 * 120)  # 3 views: 2x2 grid of 160x120 cells
    # The mesh is on the frames: the per-view video differs from the plain grey footage.
    frame = next(iter(__import__("mocap.io.video", fromlist=["read_frames"]).read_frames(res.views["cam0"])))
    assert (np.abs(frame.astype(int) - 40).max(2) > 60).mean() > 0.02
    assert not list(tmp_path.glob("output/overlay/.*"))  # no temporary file left
    assert res.codec == ("h264" if h264_available() else "mp4v")
    # Stills: the report's frames (spread + each view's worst), all views in one image of the still box.
    assert sorted(res.stills) == still_frames(load_result(tmp_path / "output" / "smpl.npz"), 4)
    still = cv2.imread(str(res.stills[min(res.stills)]))
    assert still.shape[1] <= STILL_BOX[0] and still.shape[0] <= STILL_BOX[1] and max(still.shape[:2]) > 800
    manifest = json.loads((tmp_path / "output" / "overlay" / "overlay.json").read_text())
    assert manifest["drawn"] == 4 and set(manifest["stills"]) == {str(f) for f in res.stills}


@needs_chromium
@pytest.mark.skipif(not h264_available(), reason="PyAV with libx264 not installed")
def test_overlay_videos_play_in_chromium(tmp_path):
    make_session(tmp_path, cameras=2, frames=12)
    res = write_overlays(tmp_path, scale=1.0, grid_height=240)
    for path in (res.views["cam0"], res.grid):
        ready, duration, error = play(path, tmp_path)
        assert error == 0 and ready >= 2 and duration == pytest.approx(12 / 30, abs=0.05)
