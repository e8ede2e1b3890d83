import pytest
import torch

from mocap.fitting.averaging import Proposals, average_proposals
from mocap.rotations import axis_angle_to_matrix, geodesic_angle

torch.manual_seed(0)
B, V = 3, 4


def random_rot(*shape, scale=1.0):
    return axis_angle_to_matrix(scale * torch.randn(*shape, 3, dtype=torch.float64))


def proposals_from(go_world, bp, betas, transl, R):
    """Per-view proposals of one world body, each global orientation expressed in its camera's frame."""
    return Proposals(global_orient=R @ go_world[:, None], body_pose=bp, betas=betas, transl=transl)


@pytest.fixture
def rig():
    return random_rot(V)


def test_identical_proposals_are_identity(rig):
    go, bp = random_rot(B), random_rot(B, 23)
    betas, transl = torch.randn(B, 10, dtype=torch.float64), torch.randn(B, 3, dtype=torch.float64)
    rep = lambda x: x[:, None].expand(B, V, *x.shape[1:])
    p = proposals_from(go, rep(bp), rep(betas), rep(transl), rig)
    for mode in ("chordal", "median"):
        for w in (None, torch.rand(B, V, 24, dtype=torch.float64)):
            g, b, s, t = average_proposals(p, rig, w, mode)
            torch.testing.assert_close(g, go)
            torch.testing.assert_close(b, bp)
            torch.testing.assert_close(s, betas)
            torch.testing.assert_close(t, transl)


def test_equivariant_to_world_frame_change(rig):
    """Moving the world by (Q, c) moves the averaged body the same way: X' = Q X + c."""
    go_cam, bp = random_rot(B, V), random_rot(B, V, 23)
    betas, transl = torch.randn(B, V, 10, dtype=torch.float64), torch.randn(B, V, 3, dtype=torch.float64)
    w = torch.rand(B, V, 24, dtype=torch.float64)
    Q, c = random_rot(1)[0], torch.randn(3, dtype=torch.float64)
    g, b, s, t = average_proposals(Proposals(go_cam, bp, betas, transl), rig, w)
    # Camera-frame proposals are unchanged by a world change; the cameras' R become R Q^T.
    g2, b2, s2, t2 = average_proposals(Proposals(go_cam, bp, betas, transl @ Q.T + c), rig @ Q.T, w)
    torch.testing.assert_close(g2, Q @ g)
    torch.testing.assert_close(b2, b)
    torch.testing.assert_close(s2, s)
    torch.testing.assert_close(t2, t @ Q.T + c)


def test_global_orient_uses_each_cameras_rotation(rig):
    """Views that see the same world orientation from different cameras agree after R_v^T."""
    go = random_rot(B)
    p = proposals_from(go, random_rot(B, V, 23), torch.zeros(B, V, 10, dtype=torch.float64),
                       torch.zeros(B, V, 3, dtype=torch.float64), rig)
    torch.testing.assert_close(average_proposals(p, rig)[0], go)


def test_wrong_view_moves_weighted_average_less(rig):
    go, bp = random_rot(B), random_rot(B, 23)
    bps = bp[:, None].repeat(1, V, 1, 1, 1) @ random_rot(B, V, 23, scale=0.02)  # small per-view noise
    bps[:, 0, 16:20] = random_rot(B, 4, scale=2.0)  # view 0 gets the left arm grossly wrong
    transl = torch.zeros(B, V, 3, dtype=torch.float64)
    p = proposals_from(go, bps, torch.zeros(B, V, 10, dtype=torch.float64), transl, rig)
    w = torch.ones(B, V, 24, dtype=torch.float64)
    w[:, 0, 17:21] = 0.05  # body_pose joints 16..19 are SMPL joints 17..20 in the 24-joint weights
    err = lambda b: geodesic_angle(b[:, 16:20], bp[:, 16:20]).mean()
    plain, weighted = err(average_proposals(p, rig)[1]), err(average_proposals(p, rig, w)[1])
    assert weighted < 0.5 * plain
    assert err(average_proposals(p, rig, mode="median")[1]) < plain


def test_views_without_evidence_are_skipped(rig):
    go, bp = random_rot(B), random_rot(B, 23)
    rep = lambda x: x[:, None].repeat(1, V, *([1] * (x.dim() - 1)))
    transl = rep(torch.randn(B, 3, dtype=torch.float64))
    transl[:, 1] = float("nan")
    p = proposals_from(go, rep(bp), torch.zeros(B, V, 10, dtype=torch.float64), transl, rig)
    gos = p.global_orient.clone()
    gos[:, 2] = float("nan")
    g, _, _, t = average_proposals(Proposals(gos, p.body_pose, p.betas, transl), rig)
    torch.testing.assert_close(g, go)
    torch.testing.assert_close(t, transl[:, 0])
    transl[:] = float("nan")
    assert torch.isnan(average_proposals(Proposals(gos, p.body_pose, p.betas, transl), rig)[3]).all()
