import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mocap import rotations as rot



@pytest.fixture(autouse=True)
def float64():
    # Tensors made from numpy are float64 already; this covers the ones the tests create from Python lists.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def random_rotvecs():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(64, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = rng.uniform(0, np.pi - 1e-3, size=(64, 1))
    return axes * angles


def test_axis_angle_matches_scipy(random_rotvecs):
    R = rot.axis_angle_to_matrix(torch.tensor(random_rotvecs))
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(random_rotvecs).as_matrix(), atol=1e-12)
    back = rot.matrix_to_axis_angle(R).numpy()
    np.testing.assert_allclose(back, random_rotvecs, atol=1e-9)


def test_quaternion_matches_scipy_scalar_last(random_rotvecs):
    q = rot.axis_angle_to_quaternion(torch.tensor(random_rotvecs)).numpy()
    q_ref = Rotation.from_rotvec(random_rotvecs).as_quat()  # scipy is scalar-last too
    sign = np.sign((q * q_ref).sum(1, keepdims=True))
    np.testing.assert_allclose(q * sign, q_ref, atol=1e-12)
    R = rot.quaternion_to_matrix(torch.tensor(q)).numpy()
    np.testing.assert_allclose(R, Rotation.from_quat(q_ref).as_matrix(), atol=1e-12)
    q_back = rot.matrix_to_quaternion(torch.tensor(R)).numpy()
    q_back *= np.sign((q_back * q_ref).sum(1, keepdims=True))  # q and -q are the same rotation
    np.testing.assert_allclose(q_back, q_ref, atol=1e-9)
    np.testing.assert_allclose(rot.quaternion_to_axis_angle(torch.tensor(q)).numpy(), random_rotvecs, atol=1e-9)


def test_rot6d_round_trip_and_layout(random_rotvecs):
    R = rot.axis_angle_to_matrix(torch.tensor(random_rotvecs))
    x = rot.matrix_to_rot6d(R)
    # SPIN/ReFit read a 6-vector as x.view(-1, 3, 2): element 1 is R[0, 1], element 2 is R[1, 0].
    np.testing.assert_allclose(x[:, 1].numpy(), R[:, 0, 1].numpy())
    np.testing.assert_allclose(x[:, 2].numpy(), R[:, 1, 0].numpy())
    np.testing.assert_allclose(rot.rot6d_to_matrix(x).numpy(), R.numpy(), atol=1e-12)


def test_rot6d_gram_schmidt_of_unnormalised_input():
    x = torch.tensor([[2.0, 0.0, 0.0, 3.0, 0.0, 0.0]])  # columns (2,0,0) and (0,3,0) -> identity
    np.testing.assert_allclose(rot.rot6d_to_matrix(x)[0].numpy(), np.eye(3), atol=1e-12)


@pytest.mark.parametrize("fn", [rot.axis_angle_to_matrix, rot.axis_angle_to_quaternion])
def test_gradient_finite_at_identity(fn):
    v = torch.zeros(2, 3, requires_grad=True)
    out = fn(v)
    out.sum().backward()
    assert torch.isfinite(v.grad).all()
    torch.autograd.gradcheck(lambda a: fn(a), (torch.zeros(1, 3, requires_grad=True),))


def test_matrix_to_axis_angle_gradient_finite_at_identity():
    R = torch.eye(3).expand(2, 3, 3).clone().requires_grad_(True)
    rot.matrix_to_axis_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()


def test_project_to_so3_fixes_reflection():
    M = torch.diag(torch.tensor([1.0, 1.0, -1.0]))
    R = rot.project_to_so3(M)
    assert torch.linalg.det(R) == pytest.approx(1.0)


def test_chordal_mean_of_symmetric_set_is_centre():
    centre = rot.axis_angle_to_matrix(torch.tensor([0.3, -0.5, 0.2]))
    offsets = rot.axis_angle_to_matrix(torch.tensor([[0.2, 0, 0], [-0.2, 0, 0], [0, 0.4, 0], [0, -0.4, 0]]))
    mean = rot.chordal_mean(centre @ offsets)
    np.testing.assert_allclose(mean.numpy(), centre.numpy(), atol=1e-12)


def test_chordal_mean_minimises_chordal_cost_and_is_left_equivariant(random_rotvecs):
    R = rot.axis_angle_to_matrix(torch.tensor(random_rotvecs[:7]) * 0.3)
    w = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 0.1, 1.0])
    mean = rot.chordal_mean(R, w)
    cost = lambda X: (w[:, None, None] * (R - X) ** 2).sum()  # noqa: E731
    for dv in torch.eye(3) * 1e-3:
        assert cost(mean) <= cost(rot.axis_angle_to_matrix(dv) @ mean) + 1e-12
    Q = rot.axis_angle_to_matrix(torch.tensor([1.0, 2.0, -0.5]))
    np.testing.assert_allclose(rot.chordal_mean(Q @ R, w).numpy(), (Q @ mean).numpy(), atol=1e-10)


def test_chordal_mean_batched_axis_and_zero_weights():
    R = rot.axis_angle_to_matrix(torch.randn(5, 4, 3) * 0.3)  # (B=5, N=4)
    mean = rot.chordal_mean(R, torch.zeros(5, 4), dim=1)
    np.testing.assert_allclose(mean.numpy(), rot.chordal_mean(R, dim=1).numpy(), atol=1e-12)
    only_first = rot.chordal_mean(R, torch.tensor([1.0, 0, 0, 0]), dim=1)
    np.testing.assert_allclose(only_first.numpy(), R[:, 0].numpy(), atol=1e-10)


def test_geodesic_angle():
    a = rot.axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.1]))
    b = rot.axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.6]))
    assert rot.geodesic_angle(a, b).item() == pytest.approx(0.5)


def test_the_fit_loads_no_torch_dynamo():
    """roma, which the conversions used to come from, imports torch._dynamo: about 0.9 s and 70 MB per command."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, mocap.fitting.run; print(sorted(m for m in ('roma', 'torch._dynamo') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]", out.stderr
