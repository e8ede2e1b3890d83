"""The temporal prior inside the fit (mocap.fitting.temporal) and the shared-betas shape solve."""

import pytest
import torch

from tests.fitting_data import body_spec, joints_spec, keypoints, motion, ring_rig
from mocap.body.model import load_body
from mocap.fitting.config import FitConfig, SmoothingConfig
from mocap.fitting.params import BodyParams
from mocap.fitting.sequence import fit_sequence, fit_shape
from mocap.fitting.solver import shared_betas_solve
from mocap.fitting.temporal import AccelSystem, TemporalConfig, Window, accel_system, window_solve
from mocap.rotations import axis_angle_to_matrix

NO_SMOOTHING = FitConfig(combine="joint", smoothing=SmoothingConfig(sigma_frames=0.0))
OFF = TemporalConfig(accel_sigma=0.0)


@pytest.fixture(scope="module")
def body():
    return load_body(body_spec())


def _spd_banded(B: int, P: int, seed: int = 0):
    """A random positive definite block-pentadiagonal system as blocks and as one dense matrix."""
    g = torch.Generator().manual_seed(seed)
    A = torch.zeros(B * P, B * P, dtype=torch.float64)
    for t in range(B):
        for d in (1, 2):
            if t + d < B:
                A[(t + d) * P:(t + d + 1) * P, t * P:(t + 1) * P] = 0.1 * torch.randn(P, P, generator=g, dtype=torch.float64)
    A = A + A.T + 3 * torch.eye(B * P, dtype=torch.float64)
    blk = lambda i, j: A[i * P:(i + 1) * P, j * P:(j + 1) * P]
    H = torch.stack([blk(t, t) for t in range(B)])
    sys = AccelSystem((torch.zeros_like(H), torch.stack([blk(t + 1, t) for t in range(B - 1)]),
                       torch.stack([blk(t + 2, t) for t in range(B - 2)])), torch.zeros(B, P, dtype=torch.float64))
    return A, H, sys, torch.randn(B, P, generator=g, dtype=torch.float64)


def test_window_solve_is_the_dense_solve():
    A, H, sys, g = _spd_banded(9, 5)
    before = [x.clone() for x in (H, g, *sys.blocks, sys.g)]
    x = window_solve(H, g, sys, damping=0.0)
    ref = -torch.linalg.solve(A, g.reshape(-1)).reshape(9, 5)
    assert torch.allclose(x, ref, atol=1e-10)
    # BLAS writes its results over its inputs: none of the caller's arrays may be among them
    assert all(torch.equal(a, b) for a, b in zip(before, (H, g, *sys.blocks, sys.g)))


def test_window_solve_of_an_indefinite_system_is_no_step():
    A, H, sys, g = _spd_banded(6, 4)
    H[3] -= 10 * torch.eye(4, dtype=H.dtype)  # the fourth frame's block of the factorisation fails
    assert torch.equal(window_solve(H, g, sys, damping=0.0), torch.zeros_like(g))


def test_accel_system_is_the_gauss_newton_system_of_the_penalty(body):
    """Gradient and normal blocks against autograd of 0.5 * sum w |a|^2 through the exact retraction."""
    body = load_body(body_spec(), dtype=torch.float64)
    B = 6
    truth = motion(B)
    p = BodyParams(*(x.double() for x in (truth.global_orient, truth.body_pose, truth.betas, truth.transl)))
    cfg = TemporalConfig(accel_sigma=10.0, robust_scale=1e6)  # quadratic: IRLS weights 1
    anchor_joints = body.points(p.global_orient[:2], p.body_pose[:2], p.betas[:2], p.transl[:2] - 0.01)[0]
    window = Window(torch.arange(2, 2 + B), 30.0, torch.arange(2), anchor_joints)
    sys = accel_system(body, p, window, cfg, 75)
    scale = 30.0 ** 2 / cfg.accel_sigma

    def energy(delta):
        q = p.retract(delta.reshape(B, 75), False)
        X = torch.cat([anchor_joints, body.points(q.global_orient, q.body_pose, q.betas, q.transl)[0]])
        a = (X[:-2] - 2 * X[1:-1] + X[2:]) * scale
        return 0.5 * (a ** 2).sum()

    zero = torch.zeros(B * 75, dtype=torch.float64)
    g = torch.autograd.grad(energy(zero.requires_grad_()), zero)[0].reshape(B, 75)
    assert torch.allclose(sys.g, g, rtol=1e-6, atol=1e-6 * g.abs().max())
    # Gauss-Newton blocks = J^T J of the (linear in X) residuals; check them against the residual Jacobian.
    def residuals(delta):
        q = p.retract(delta.reshape(B, 75), False)
        X = torch.cat([anchor_joints, body.points(q.global_orient, q.body_pose, q.betas, q.transl)[0]])
        return ((X[:-2] - 2 * X[1:-1] + X[2:]) * scale).reshape(-1)

    Jr = torch.autograd.functional.jacobian(residuals, torch.zeros(B * 75, dtype=torch.float64))
    JtJ = Jr.T @ Jr
    blk = lambda i, j: JtJ[i * 75:(i + 1) * 75, j * 75:(j + 1) * 75]
    leaf = torch.tensor([3 * j + a for j in (10, 11, 15, 22, 23) for a in range(3)])  # feet, head, hands
    for d in range(3):
        ref = torch.stack([blk(t + d, t) for t in range(B - d)])
        assert torch.allclose(sys.blocks[d], ref, atol=1e-6 * JtJ.abs().max())
        # a leaf joint's rotation moves no joint centre (the blocks' products leave those columns out)
        assert float(ref[:, leaf].abs().max()) == 0 and float(ref[:, :, leaf].abs().max()) == 0


def test_shared_betas_solve_is_the_dense_solve():
    """Per-frame systems with a shared last-10 block, against one dense system over [poses..., betas]."""
    g = torch.Generator().manual_seed(1)
    B, P = 4, 16
    M = torch.randn(B, P + 3, P, generator=g, dtype=torch.float64)
    H = M.transpose(-1, -2) @ M
    grad = torch.randn(B, P, generator=g, dtype=torch.float64)
    step = shared_betas_solve(H, grad, damping=0.0)
    n = P - 10
    A = torch.zeros(B * n + 10, B * n + 10, dtype=torch.float64)
    b = torch.zeros(B * n + 10, dtype=torch.float64)
    for t in range(B):
        s = slice(t * n, (t + 1) * n)
        A[s, s], A[s, -10:], A[-10:, s] = H[t, :n, :n], H[t, :n, n:], H[t, n:, :n]
        A[-10:, -10:] += H[t, n:, n:]
        b[s], b[-10:] = grad[t, :n], b[-10:] + grad[t, n:]
    ref = -torch.linalg.solve(A, b)
    assert torch.allclose(step[:, :n].reshape(-1), ref[:-10], atol=1e-9)
    assert torch.allclose(step[:, n:], ref[-10:].expand(B, 10), atol=1e-9)


def _linear_motion(F: int, velocity: float) -> BodyParams:
    """One fixed pose translated at a constant ``velocity`` (metres per frame) along x."""
    aa = torch.zeros(F, 24, 3)
    aa[:, 1:3, 0], aa[:, 4:6, 0], aa[:, 16, 2], aa[:, 17, 2] = -0.3, 0.4, -0.6, 0.6
    transl = torch.stack([velocity * torch.arange(F, dtype=torch.float32) - 0.3, torch.full((F,), 0.9), torch.zeros(F)], 1)
    return BodyParams.from_rotations(axis_angle_to_matrix(aa), 0.5 * torch.ones(F, 10), transl)


def _joints(body, p: BodyParams):
    return body.points(p.global_orient, p.body_pose, p.betas, p.transl)[0]


def _accel_mm(X):
    return float((X[:-2] - 2 * X[1:-1] + X[2:]).norm(dim=-1).mean() * 1000)


def test_static_pose_is_left_unchanged(body):
    spec, rig = joints_spec(), ring_rig(4)
    truth = _linear_motion(12, 0.0)
    kp = keypoints(body, spec, truth, rig)
    betas = truth.betas[0]
    on = fit_sequence(kp, rig, body, spec, NO_SMOOTHING, betas=betas)
    off = fit_sequence(kp, rig, body, spec, NO_SMOOTHING.replace(temporal=OFF), betas=betas)
    X_on, X_off, X_true = _joints(body, on.params), _joints(body, off.params), _joints(body, truth)
    # Both stop within a fraction of a millimetre of each other (10 iterations from the same start).
    assert float((X_on - X_off).norm(dim=-1).max()) < 5e-4
    assert float((X_on - X_true).norm(dim=-1).mean()) < 5e-4
    # At the static truth itself the prior pulls nowhere, anchors included.
    window = Window(torch.arange(2, 12), 30.0, torch.arange(2), X_true[:2])
    sys = accel_system(body, truth.index(slice(2, None)), window, TemporalConfig(), 75)
    assert float(sys.g.abs().max()) < 1e-6 * float(sys.blocks[0].abs().max())


def test_jitter_of_noisy_constant_velocity_motion_is_reduced(body):
    spec, rig = joints_spec(), ring_rig(4)
    truth = _linear_motion(50, 0.02)  # 0.6 m/s at 30 fps: the prior must not hold a moving body back
    kp = keypoints(body, spec, truth, rig, noise=3.0, seed=2)
    betas = truth.betas[0]
    on = fit_sequence(kp, rig, body, spec, NO_SMOOTHING, betas=betas)
    off = fit_sequence(kp, rig, body, spec, NO_SMOOTHING.replace(temporal=OFF), betas=betas)
    X_true = _joints(body, truth)
    err = {k: _accel_mm(_joints(body, r.params) - X_true) for k, r in (("on", on), ("off", off))}
    pos = {k: float((_joints(body, r.params) - X_true).norm(dim=-1).mean() * 1000) for k, r in (("on", on), ("off", off))}
    assert err["on"] < 0.5 * err["off"]
    assert pos["on"] < pos["off"]  # smoother and closer to the truth, no lag


def test_shared_betas_recover_an_extreme_shape(body):
    """The squat subject's kind of shape (two components near -1.8), fitted from keypoints of a short clip."""
    spec, rig = joints_spec(), ring_rig(4)
    truth = motion(20, seed=3)
    betas = torch.zeros(10)
    betas[0], betas[1], betas[3] = -1.8, -1.8, 0.8
    truth = BodyParams(truth.global_orient, truth.body_pose, betas.expand(20, 10), truth.transl)
    kp = keypoints(body, spec, truth, rig, noise=2.0, seed=1)

    joint = fit_shape(kp, rig, body, spec, NO_SMOOTHING).betas
    averaged = fit_shape(kp, rig, body, spec, NO_SMOOTHING.replace(combine="average")).betas
    rest = lambda b: body.rest_joints(b[None])[0]
    err = {k: float((rest(b) - rest(betas)).norm(dim=-1).mean() * 1000) for k, b in (("joint", joint), ("avg", averaged))}
    assert err["joint"] < 5.0, err  # mm, rest-pose joints
    assert err["joint"] < err["avg"], err


def test_precision_weighted_average_of_view_proposals_is_the_joint_step(body):
    """docs/fitting.md: each view's damped Gauss-Newton proposal (its share of the priors) weighed by its own
    damped normal matrix and averaged in the shared tangent space gives the joint Levenberg-Marquardt step."""
    from mocap.fitting.solver import Cameras, BodyPoints, damped_solve, linearize

    spec, rig = joints_spec(), ring_rig(4)
    truth = motion(3)
    kp = keypoints(body, spec, truth, rig, noise=3.0)
    cfg = FitConfig()
    start = BodyParams(truth.global_orient, truth.body_pose @ axis_angle_to_matrix(0.1 * torch.ones(3, 23, 3)),
                       truth.betas, truth.transl + 0.02)
    lin = linearize(BodyPoints(body, spec), Cameras.from_rig(rig, body.dtype), start,
                    torch.as_tensor(kp.keypoints[..., :2], dtype=body.dtype), torch.ones(3, 4, 24), False,
                    cfg.priors, cfg.robust)
    Hd, gd = (x.double() for x in lin.data_normal())
    Hp, gp = (x.double() for x in lin.prior_normal())
    damp = 0.3
    A = Hd + Hp[:, None] / 4
    A = A + torch.diag_embed(damp * (torch.diagonal(A, dim1=-2, dim2=-1) + 1e-6))  # each view's damped matrix
    proposals = -torch.linalg.solve(A, (gd + gp[:, None] / 4)[..., None])[..., 0]  # (B, V, P)
    averaged = torch.linalg.solve(A.sum(1), (A @ proposals[..., None]).sum(1))[..., 0]
    # The views' dampings, relative to their diagonals, add up to the same damping of the summed diagonal.
    joint = damped_solve(Hd.sum(1) + Hp, gd.sum(1) + gp, damp)
    assert torch.allclose(averaged, joint, rtol=1e-5, atol=1e-6 * float(joint.abs().max()))
