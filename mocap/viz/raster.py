"""The mesh the overlays draw: decimation by vertex clustering, outward winding, and a z-buffer rasteriser.

Pixels are as in :mod:`mocap.cameras` ((0, 0) = centre of the top-left pixel). The rasteriser works in numpy on
whole arrays (spans of face rows, then pixels, then one packed maximum per pixel for the z-test): on the
decimated body at 540x960 it costs a few milliseconds per view and frame, where filling one face at a time
in OpenCV made a Python call per face.
"""

from __future__ import annotations

import sys

import numpy as np

_LOW_WORD = 0 if sys.byteorder == "little" else 1  # the int32 of an int64's low bits


def decimate_faces(vertices: np.ndarray, faces: np.ndarray, cell: float = 0.025) -> np.ndarray:
    """Faces ``(M', 3)`` of a coarser mesh over a subset of the original vertices (vertex clustering).

    Vertices of ``vertices`` (V, 3), best a rest pose, falling in one ``cell``-metre cube are merged into the
    one nearest the cube's mean; faces that collapse or repeat are dropped. The result indexes the original
    vertex array, so any posed copy of the mesh draws with it. Faces keep their orientation.
    """
    keys = np.floor(vertices / cell).astype(np.int64)
    _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)
    centroid = np.zeros((len(counts), 3))
    np.add.at(centroid, cluster, vertices)
    centroid /= counts[:, None]
    d = np.linalg.norm(vertices - centroid[cluster], axis=1)
    order = np.lexsort((d, cluster))  # per cluster, nearest vertex first
    rep = np.empty(len(counts), dtype=np.int64)
    first = np.ones(len(order), dtype=bool)
    first[1:] = cluster[order[1:]] != cluster[order[:-1]]
    rep[cluster[order[first]]] = order[first]
    f = rep[cluster[faces]]
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[keep]
    _, unique = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return f[np.sort(unique)]


def outward_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` wound so their normals point out of the closed-ish mesh (positive signed volume)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum()
    return faces if volume >= 0 else faces[:, ::-1].copy()


def _runs(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of lengths ``n`` (R,): the run of every element and its offset within the run, ``(sum n,)`` each."""
    run = np.repeat(np.arange(len(n)), n)
    return run, np.arange(len(run)) - np.repeat(np.cumsum(n) - n, n)


def rasterise(uv: np.ndarray, inv_depth: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The face seen at each pixel: a z-buffer over the triangles ``uv`` (M, 3, 2) pixels.

    ``inv_depth`` (M, 3) is 1 / z at each corner (camera z, metres); it is affine over a planar face in the image,
    so each pixel's depth is exact for an undistorted projection. A pixel belongs to a face when its centre lies
    inside the triangle (edges included); the face with the largest 1 / z wins. Returns face indices (h', w')
    int32 (-1 where no face) over the bounding box of the faces clipped to ``size`` (w, h), and the box's
    top-left pixel (x0, y0).
    """
    w, h = size
    x, y = uv[..., 0], uv[..., 1]
    x0, y0 = max(int(np.floor(x.min())), 0), max(int(np.floor(y.min())), 0)
    x1, y1 = min(int(np.ceil(x.max())), w - 1), min(int(np.ceil(y.max())), h - 1)
    if x1 < x0 or y1 < y0:
        return np.full((0, 0), -1, np.int32), (0, 0)
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    # One span per face and pixel row: where the row's line through pixel centres crosses the face's edges,
    # the three edges (j -> k) at once as corner-major (3, spans) arrays, which numpy reduces fastest.
    r0 = np.maximum(np.ceil(y.min(1)), y0).astype(np.int64)
    r1 = np.minimum(np.floor(y.max(1)), y1).astype(np.int64)
    f, off = _runs(np.maximum(r1 - r0 + 1, 0))
    row = r0[f] + off
    yy = row.astype(np.float64)
    xt, yt = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)
    dy = yt[[1, 2, 0]] - yt
    dy[dy == 0] = np.inf  # horizontal edges never cross a row
    t = (yy - np.take(yt, f, axis=1)) / np.take(dy, f, axis=1)
    ok = (t >= 0) & (t <= 1)
    xe = np.take(xt, f, axis=1) + t * np.take(xt[[1, 2, 0]] - xt, f, axis=1)
    xl, xr = np.where(ok, xe, np.inf).min(0), np.where(ok, xe, -np.inf).max(0)
    c0 = np.maximum(np.ceil(xl), x0)
    nc = np.maximum(np.minimum(np.floor(xr), x1) - c0 + 1, 0).astype(np.int64)
    c0 = np.where(nc > 0, c0, 0).astype(np.int64)
    # 1/z = a x + b y + c over each face (Cramer's rule on its corners).
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    d1, d2 = inv_depth[:, 1] - inv_depth[:, 0], inv_depth[:, 2] - inv_depth[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(det == 0, np.inf, det)  # a degenerate face covers no pixel centre anyway
    a, b = (d1 * e2[:, 1] - d2 * e1[:, 1]) / det, (e1[:, 0] * d2 - e2[:, 0] * d1) / det
    c = inv_depth[:, 0] - a * uv[:, 0, 0] - b * uv[:, 0, 1]
    # Pixels: each span's values repeated along it, plus the step from the span's first pixel.
    step = np.arange(int(nc.sum())) - np.repeat(np.cumsum(nc) - nc, nc)
    pix = np.repeat((row - y0) * bw + (c0 - x0), nc) + step
    af = a[f]
    depth = np.repeat(af * c0 + b[f] * yy + c[f], nc) + np.repeat(af, nc) * step
    # The z-test as one maximum per pixel over (quantised 1/z, face) packed into an int64, the face in the low
    # 32 bits: the ids are a view of the buffer, -1 where no face.
    lo, hi = float(inv_depth.min()), float(inv_depth.max())
    q = np.clip((depth - lo) * ((1 << 31) / max(hi - lo, 1e-12)), 0, (1 << 31) - 1).astype(np.int64)
    buf = np.full(bw * bh, -1, np.int64)
    np.maximum.at(buf, pix, (q << 32) | np.repeat(f, nc))
    return buf.view(np.int32)[_LOW_WORD::2].reshape(bh, bw), (x0, y0)
