"""Overlay frames against independent projections (cv2.projectPoints) and coverage by distance transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from mocap.viz.overlay import (DETECTED_BGR, FITTED_BGR, decimate_faces, grid_shape, outward_faces,  # noqa: E402
                               render_overlay_frame, write_overlays)
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
    uv = _cv_project(cam, V[np.unique(faces)])
    px = np.round(uv).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < 400) & (px[:, 1] >= 0) & (px[:, 1] < 480)
    assert inside.all()
    assert covered[px[:, 1], px[:, 0]].mean() > 0.99
    # Independently: pixels farther than 3 px from every projected vertex of the full mesh stay untouched.
    near = np.zeros((480, 400), np.uint8)
    full = np.round(_cv_project(cam, V)).astype(int)
    near[np.clip(full[:, 1], 0, 479), np.clip(full[:, 0], 0, 399)] = 1
    dist = cv2.distanceTransform(1 - near, cv2.DIST_L2, 5)
    assert not covered[dist > 3].any()
    assert covered.sum() > 0.9 * (dist <= 1).sum()  # and the silhouette is filled, not just dotted


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
