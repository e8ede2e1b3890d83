"""Joint refinement of every camera's intrinsics and extrinsics and every board pose (rigid board model).

Hand-written (Levenberg-Marquardt over OpenCV's derivatives) because aniposelib's bundle adjustment refines
one focal length and k1 per camera, with free 3D points; recovering the full K and distortion (focal within
0.5 %, principal point within 2 px) needs every view of the same rigid board to constrain all cameras at once,
as OpenCV's ``calibrateMultiview`` (OpenCV >= 4.10's C++ API, not in the Python wheels we use) does.

Parameters: per camera ``rvec, t`` (camera 0's are held fixed: they fix the world frame), ``fx, fy, cx, cy,
k1, k2, p1, p2[, k3]``; per board frame ``rvec, t`` (board to world). Residuals: pixels, with a Huber loss on
each corner's 2D error. The Jacobian is analytic, from OpenCV: ``cv2.composeRT`` chains the board-to-world and
world-to-camera poses and gives the derivatives of the composition, ``cv2.projectPoints`` those of the
projection (finite differences cost ~20 residual evaluations per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class BundleResult:
    K: np.ndarray  # (C, 3, 3)
    dist: np.ndarray  # (C, 5)
    R: np.ndarray  # (C, 3, 3) world to camera
    t: np.ndarray  # (C, 3)
    R_boards: np.ndarray  # (M, 3, 3) board to world
    t_boards: np.ndarray  # (M, 3)
    residuals: np.ndarray  # (P,) pixel error per observation after refinement
    iterations: int


def problem(K, dist, R, t, R_boards, t_boards, object_points, corners, fix_k3: bool = True):
    """The least-squares problem of :func:`refine`: ``(x0, evaluate, unpack)`` with ``evaluate(x)`` ->
    residuals (2P,) and their sparse Jacobian (2P, len(x)), ``unpack(x)`` -> cameras (C, 10 + nd), boards (M, 6)."""
    import cv2

    C, M = len(K), len(R_boards)
    nd = 5 if not fix_k3 else 4
    ncam = 6 + 4 + nd
    seen = ~np.isnan(corners[..., 0])  # (C, M, N)
    pairs = np.argwhere(seen.any(-1))  # (Q, 2) camera, board: C order, so residuals follow np.nonzero's order
    pts = [np.ascontiguousarray(object_points[seen[c, m]], dtype=np.float64) for c, m in pairs]
    uv = np.concatenate([corners[c, m][seen[c, m]] for c, m in pairs]).ravel()
    sizes = np.array([len(p) for p in pts])
    P = int(sizes.sum())

    cams0 = np.concatenate([Rotation.from_matrix(R).as_rotvec(), t, K[:, 0, [0]], K[:, 1, [1]], K[:, 0, [2]],
                            K[:, 1, [2]], dist[:, :nd]], 1)
    boards0 = np.concatenate([Rotation.from_matrix(R_boards).as_rotvec(), t_boards], 1)
    fixed0 = cams0[0, :6].copy()
    x0 = np.concatenate([cams0[0, 6:], cams0[1:].ravel(), boards0.ravel()])
    board_start = ncam - 6 + (C - 1) * ncam

    def unpack(x):
        cams = np.concatenate([np.concatenate([fixed0, x[: ncam - 6]])[None], x[ncam - 6: board_start].reshape(C - 1, ncam)])
        return cams, x[board_start:].reshape(M, 6)

    # Jacobian layout, fixed: per pair, 2 rows per corner, its camera's free columns then its board's 6
    cam_cols = [np.arange(ncam - 6) if c == 0 else ncam - 6 + (c - 1) * ncam + np.arange(ncam) for c in range(C)]
    rows, cols = [], []
    start = 0
    for (c, m), n in zip(pairs, sizes):
        cc = np.concatenate([cam_cols[c], board_start + 6 * m + np.arange(6)])
        rows.append(np.repeat(np.arange(start, start + 2 * n), len(cc)))
        cols.append(np.tile(cc, 2 * n))
        start += 2 * n
    rows, cols = np.concatenate(rows), np.concatenate(cols)

    cache: dict = {}

    def evaluate(x):
        if cache.get("x") is not None and np.array_equal(cache["x"], x):
            return cache["f"], cache["J"]
        cams, boards = unpack(x)
        f, blocks = [], []
        for (c, m), p in zip(pairs, pts):
            cam, b = cams[c], boards[m]
            r3, t3, dr3dr1, _, dr3dr2, _, dt3dr1, dt3dt1, dt3dr2, dt3dt2 = cv2.composeRT(b[:3], b[3:], cam[:3], cam[3:6])
            Kc = np.array([[cam[6], 0.0, cam[8]], [0.0, cam[7], cam[9]], [0.0, 0.0, 1.0]])
            proj, J = cv2.projectPoints(p, r3, t3, Kc, cam[10:])
            f.append(proj.reshape(-1))
            Jr, Jt = J[:, :3], J[:, 3:6]
            J_cam = np.concatenate([Jr @ dr3dr2 + Jt @ dt3dr2, Jt @ dt3dt2, J[:, 6:]], 1)
            J_board = np.concatenate([Jr @ dr3dr1 + Jt @ dt3dr1, Jt @ dt3dt1], 1)
            blocks.append(np.concatenate([J_cam[:, 6:] if c == 0 else J_cam, J_board], 1).ravel())
        res = np.concatenate(f) - uv
        jac = csr_matrix((np.concatenate(blocks), (rows, cols)), shape=(2 * P, len(x)))
        cache.update(x=x.copy(), f=res, J=jac)
        return res, jac

    return x0, evaluate, unpack


def refine(K, dist, R, t, R_boards, t_boards, object_points, corners, fix_k3: bool = True,
           huber_px: float = 1.0, max_nfev: int = 200) -> BundleResult:
    """Refine cameras ``K`` (C, 3, 3), ``dist`` (C, 5), ``R`` (C, 3, 3), ``t`` (C, 3) and board poses
    ``R_boards`` (M, 3, 3), ``t_boards`` (M, 3) against ``corners`` (C, M, N, 2) (NaN unseen) of
    ``object_points`` (N, 3). Residuals come out in ``np.nonzero(~isnan(corners[..., 0]))`` order."""
    C, nd = len(K), 5 if not fix_k3 else 4
    x0, evaluate, unpack = problem(K, dist, R, t, R_boards, t_boards, object_points, corners, fix_k3)
    x, f, nfev = _levenberg_marquardt(evaluate, x0, huber_px, max_nfev)
    cams, boards = unpack(x)
    Kc = np.zeros((C, 3, 3))
    Kc[:, 0, 0], Kc[:, 1, 1], Kc[:, 0, 2], Kc[:, 1, 2], Kc[:, 2, 2] = cams[:, 6], cams[:, 7], cams[:, 8], cams[:, 9], 1
    d = np.zeros((C, 5))
    d[:, :nd] = cams[:, 10:10 + nd]
    res = np.linalg.norm(f.reshape(-1, 2), axis=1)
    return BundleResult(Kc, d, Rotation.from_rotvec(cams[:, :3]).as_matrix(), cams[:, 3:6],
                        Rotation.from_rotvec(boards[:, :3]).as_matrix(), boards[:, 3:], res, nfev)


def _robust_cost(f: np.ndarray, huber_px: float) -> float:
    """Huber cost of the per-corner 2D residuals ``f`` (2P,): quadratic up to ``huber_px``, then linear."""
    r = np.linalg.norm(f.reshape(-1, 2), axis=1)
    return float(np.where(r <= huber_px, r**2, 2 * huber_px * r - huber_px**2).sum())


def _levenberg_marquardt(evaluate, x0: np.ndarray, huber_px: float, max_nfev: int, ftol: float = 1e-12,
                         xtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray, int]:
    """Minimise the Huber cost of ``evaluate(x)``'s residuals by Levenberg-Marquardt with reweighting.

    Hand-written because scipy's ``least_squares`` solves each step of a sparse problem iteratively (LSMR),
    which on this ill-conditioned one needs thousands of inner iterations (~5 s a step for 4 cameras x 300
    frames); the normal equations are only (14 C + 6 M) square and sparse, so each step is solved directly.
    """
    from scipy.sparse import diags
    from scipy.sparse.linalg import spsolve

    x = x0.copy()
    f, J = evaluate(x)
    cost, nfev, lam = _robust_cost(f, huber_px), 1, 1e-3
    while nfev < max_nfev:
        r = np.linalg.norm(f.reshape(-1, 2), axis=1)
        w = np.repeat(np.minimum(1.0, huber_px / np.maximum(r, 1e-300)), 2)  # IRLS weights of the Huber loss
        JtW = J.T.multiply(w).tocsr()
        H, g = (JtW @ J).tocsc(), JtW @ f
        d = H.diagonal()
        while nfev < max_nfev:
            step = spsolve(H + diags(lam * np.maximum(d, 1e-12 * d.max()), format="csc"), -g)
            f_new, J_new = evaluate(x + step)
            nfev += 1
            cost_new = _robust_cost(f_new, huber_px)
            if cost_new < cost:
                break
            lam *= 10.0
        else:
            break
        x, f, J = x + step, f_new, J_new
        small_step = np.linalg.norm(step) <= xtol * (xtol + np.linalg.norm(x))
        small_gain = cost - cost_new <= ftol * cost
        cost, lam = cost_new, max(lam / 10.0, 1e-12)
        if small_step or small_gain:
            break
    return x, f, nfev
