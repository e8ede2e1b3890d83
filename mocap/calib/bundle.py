"""Joint refinement of every camera's intrinsics and extrinsics and every board pose (rigid board model).

Hand-written over scipy's ``least_squares`` because aniposelib's bundle adjustment refines one focal length and
k1 per camera, with free 3D points; recovering the full K and distortion (focal within 0.5 %, principal point
within 2 px) needs every view of the same rigid board to constrain all cameras at once, as OpenCV's
``calibrateMultiview`` (OpenCV >= 4.10's C++ API, not in the Python wheels we use) does.

Parameters: per camera ``rvec, t`` (camera 0's are held fixed: they fix the world frame), ``fx, fy, cx, cy,
k1, k2, p1, p2[, k3]``; per board frame ``rvec, t`` (board to world). Residuals: pixels, with a Huber loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.spatial.transform import Rotation

from mocap.cameras import project_camera_points


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


def refine(K, dist, R, t, R_boards, t_boards, object_points, corners, fix_k3: bool = True,
           huber_px: float = 1.0, max_nfev: int = 200) -> BundleResult:
    """Refine cameras ``K`` (C, 3, 3), ``dist`` (C, 5), ``R`` (C, 3, 3), ``t`` (C, 3) and board poses
    ``R_boards`` (M, 3, 3), ``t_boards`` (M, 3) against ``corners`` (C, M, N, 2) (NaN unseen) of
    ``object_points`` (N, 3)."""
    C, M = len(K), len(R_boards)
    nd = 5 if not fix_k3 else 4
    ncam = 6 + 4 + nd
    obs_c, obs_m, obs_n = np.nonzero(~np.isnan(corners[..., 0]))
    uv = corners[obs_c, obs_m, obs_n]
    P = len(obs_c)

    def pack(K, dist, R, t, Rb, tb):
        cams = np.concatenate([Rotation.from_matrix(R).as_rotvec(), t, K[:, 0, [0]], K[:, 1, [1]], K[:, 0, [2]],
                               K[:, 1, [2]], dist[:, :nd]], 1)
        boards = np.concatenate([Rotation.from_matrix(Rb).as_rotvec(), tb], 1)
        return cams, boards

    cams0, boards0 = pack(K, dist, R, t, R_boards, t_boards)
    fixed0 = cams0[0, :6].copy()

    def unpack(x):
        cams = np.concatenate([np.concatenate([fixed0, x[: ncam - 6]])[None], x[ncam - 6: ncam - 6 + (C - 1) * ncam].reshape(C - 1, ncam)])
        boards = x[ncam - 6 + (C - 1) * ncam:].reshape(M, 6)
        return cams, boards

    def cameras_from(cams):
        Kc = np.zeros((C, 3, 3))
        Kc[:, 0, 0], Kc[:, 1, 1], Kc[:, 0, 2], Kc[:, 1, 2], Kc[:, 2, 2] = cams[:, 6], cams[:, 7], cams[:, 8], cams[:, 9], 1
        d = np.zeros((C, 5))
        d[:, :nd] = cams[:, 10:10 + nd]
        return Kc, d, Rotation.from_rotvec(cams[:, :3]).as_matrix(), cams[:, 3:6]

    def residuals(x):
        cams, boards = unpack(x)
        Kc, d, Rc, tc = cameras_from(cams)
        Rb = Rotation.from_rotvec(boards[:, :3]).as_matrix()
        Xw = np.einsum("pij,pj->pi", Rb[obs_m], object_points[obs_n]) + boards[obs_m, 3:]
        Xc = np.einsum("pij,pj->pi", Rc[obs_c], Xw) + tc[obs_c]
        proj = project_camera_points(Xc[:, None], Kc[obs_c], d[obs_c])[:, 0]
        return (proj - uv).ravel()

    x0 = np.concatenate([cams0[0, 6:], cams0[1:].ravel(), boards0.ravel()])
    # Jacobian pattern: each observation's two residuals depend on its camera's and its board's parameters
    cam_cols = np.where(obs_c[:, None] == 0, np.arange(ncam)[None] - 6,
                        ncam - 6 + (obs_c[:, None] - 1) * ncam + np.arange(ncam)[None])  # (P, ncam); < 0: fixed
    board_cols = ncam - 6 + (C - 1) * ncam + obs_m[:, None] * 6 + np.arange(6)[None]
    cols = np.concatenate([cam_cols, board_cols], 1)
    rows = np.broadcast_to(np.arange(P)[:, None], cols.shape)
    keep = cols >= 0
    r, c = rows[keep], cols[keep]
    sparsity = coo_matrix((np.ones(2 * len(r), np.int8), (np.concatenate([2 * r, 2 * r + 1]), np.concatenate([c, c]))),
                          shape=(2 * P, len(x0))).tocsr()
    sol = least_squares(residuals, x0, jac_sparsity=sparsity, loss="huber", f_scale=huber_px, x_scale="jac",
                        method="trf", tr_solver="lsmr", max_nfev=max_nfev, ftol=1e-10, xtol=1e-10)
    cams, boards = unpack(sol.x)
    Kc, d, Rc, tc = cameras_from(cams)
    res = np.linalg.norm(sol.fun.reshape(P, 2), axis=1)
    return BundleResult(Kc, d, Rc, tc, Rotation.from_rotvec(boards[:, :3]).as_matrix(), boards[:, 3:], res, int(sol.nfev))
