"""Association across views and tracking over time, on tiny synthetic detections whose identities are known:
people in shuffled detection slots, crossing paths, a person seen by 2 of 4 views, a false detection, a
person entering late, one view following someone else (today's single-person detector on a two-person take)."""

import numpy as np
import pytest

from mocap.errors import ConfigError, FittingError
from mocap.fitting.association import AssociationConfig, _ray_distance, cluster_frame, pair_distances
from mocap.fitting.people import choose_people
from mocap.fitting.swaps import swap_orders
from mocap.fitting.tracking import DETECTION_STATUS, VIEW_REASONS, _centers, _link, _stitch, associate
from mocap.io.keypoints_h5 import Detections2D
from mocap.keypoint_formats import BLAZEPOSE33
from mocap.synth.rig import ring_rig

from tests.test_swaps import skeleton

F = 30


def walker(rng, start, velocity, frames=F) -> np.ndarray:
    """``(F, 33, 3)``: the swap tests' skeleton shifted to ``start`` (x, z) and walking at ``velocity`` m/frame."""
    X = skeleton(rng)[:1].repeat(frames, 0)
    path = np.asarray(start, float) + np.arange(frames)[:, None] * np.asarray(velocity, float)
    X[..., 0] += path[:, None, 0]
    X[..., 2] += path[:, None, 1]
    return X


def detections(rig, people, seen, rng, extra=None) -> tuple[Detections2D, np.ndarray]:
    """Every person of ``people`` (N, F, K, 3) projected into the views where ``seen`` (N, F, V) says, with
    2 px noise, in shuffled slots; ``extra`` (F, V, K, 3) adds a detection per view (NaN: none). Also the
    true person of each slot ``(F, V, P)`` (-1: empty or the extra detection)."""
    N, Fn, K, _ = people.shape
    V = len(rig)
    P = N + (extra is not None)
    kp = np.full((Fn, V, P, K, 3), np.nan)
    truth = np.full((Fn, V, P), -1)
    for f in range(Fn):
        for v, cam in enumerate(rig):
            order = rng.permutation(P)
            for n in range(N):
                if seen[n, f, v]:
                    uv = cam.project(people[n, f]) + rng.normal(0, 2.0, (K, 2))
                    kp[f, v, order[n]] = np.concatenate([uv, rng.uniform(0.7, 1.0, (K, 1))], 1)
                    truth[f, v, order[n]] = n
            if extra is not None and np.isfinite(extra[f, v]).all():
                kp[f, v, order[N]] = extra[f, v]
    present = np.isfinite(kp[..., 0]).any(-1)
    scores = np.where(present, 0.9, np.nan)
    boxes = np.zeros((Fn, V, P, 4))
    det = Detections2D(tuple(rig.names), kp, boxes, scores, rig.image_sizes, "blazepose33", BLAZEPOSE33, 30.0)
    return det, truth


def identity_map(assoc, truth) -> dict[int, set[int]]:
    """Track id -> the true people its slots hold."""
    out: dict[int, set[int]] = {}
    for n in range(assoc.num_people):
        out[n] = set(truth[assoc.person == n].tolist())
    return out


@pytest.fixture
def rig():
    return ring_rig(4, np.random.default_rng(1))


def test_ray_distance_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    o1, o2 = rng.normal(size=3), rng.normal(size=3) + [3, 0, 0]
    d1, d2 = rng.normal(size=3), rng.normal(size=3)
    d1, d2 = d1 / np.linalg.norm(d1), d2 / np.linalg.norm(d2)
    s = np.linspace(0, 20, 2001)
    pts1, pts2 = o1 + s[:, None] * d1, o2 + s[:, None] * d2
    brute = np.linalg.norm(pts1[:, None] - pts2[None], axis=-1).min()
    got = _ray_distance(o1, d1, o2, d2)
    if np.isfinite(got):  # the closest points lie in front of both origins
        assert got == pytest.approx(brute, abs=0.02)
    # Rays pointing apart meet only behind their origins: no agreement.
    assert _ray_distance(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([-1.0, 0, 0])) == np.inf


def test_two_people_in_shuffled_slots_keep_their_ids(rig):
    rng = np.random.default_rng(2)
    people = np.stack([walker(rng, (-0.8, 0.0), (0.01, 0)), walker(rng, (0.8, 0.3), (0.0, -0.01))])
    det, truth = detections(rig, people, np.ones((2, F, 4), bool), rng)
    dist = pair_distances(det, rig)
    np.testing.assert_array_equal(pair_distances(det, rig, chunk=3), dist)  # a long take's chunks: the same
    same = truth[:, :, :, None, None] == truth[:, None, None, :, :]
    finite = np.isfinite(dist)
    assert np.nanmax(dist[finite & same]) < 0.05  # the same person: within a few cm
    # Two people usually lie far apart, but two views alone can agree by chance (shared epipolar planes),
    # which is why a group must agree pair by pair.
    assert np.nanmedian(dist[finite & ~same & (truth[:, :, :, None, None] >= 0)]) > 0.2
    assoc = associate(det, rig)
    assert assoc.num_people == 2
    assert all(len(t) == 1 for t in identity_map(assoc, truth).values())
    assert (assoc.views_seen(0) == 4).all() and (assoc.views_seen(1) == 4).all()
    kp = assoc.keypoints(det, 0)
    n = next(iter(identity_map(assoc, truth)[0]))
    expected = np.stack([[cam.project(people[n, f]) for cam in rig] for f in range(F)])
    assert np.abs(kp.keypoints[..., :2] - expected).max() < 10  # 2 px noise
    # Each person's centre near their walk (skeleton's median); the groups' centres triangulated together (a
    # long take, chunks of 7) equal those triangulated one by one
    assert np.nanmax(np.abs(assoc.centers[0, :, [0, 2]].T - np.median(people[n], 1)[:, [0, 2]])) < 0.05
    groups = [(f, {v: int(p) for v, p in enumerate(np.argmax(truth[f] == m, -1))}) for f in range(F) for m in (0, 1)]
    one_by_one = np.stack([_centers(det, rig, [g], AssociationConfig())[0] for g in groups])
    np.testing.assert_array_equal(_centers(det, rig, groups, AssociationConfig(), chunk=7), one_by_one)


def test_crossing_paths_keep_ids(rig):
    rng = np.random.default_rng(3)
    frames = 60
    # Walking towards each other at 1.2 m/s (30 fps); their centres pass 0.35 m apart at frame 30.
    people = np.stack([walker(rng, (-1.2, 0.0), (0.04, 0.0), frames), walker(rng, (1.2, 0.35), (-0.04, 0.0), frames)])
    det, truth = detections(rig, people, np.ones((2, frames, 4), bool), rng)
    assoc = associate(det, rig)
    assert assoc.num_people == 2
    ids = identity_map(assoc, truth)
    assert ids[0] != ids[1] and all(len(t) == 1 for t in ids.values())  # 0 identity switches
    assert all(assoc.span(n) == (0, frames - 1) for n in range(2))


def test_person_seen_by_two_of_four_views(rig):
    rng = np.random.default_rng(4)
    people = np.stack([walker(rng, (-0.5, 0.0), (0.01, 0)), walker(rng, (0.9, 0.0), (0, 0.01))])
    seen = np.ones((2, F, 4), bool)
    seen[1, :, 2:] = False
    det, truth = detections(rig, people, seen, rng)
    assoc = associate(det, rig)
    assert assoc.num_people == 2
    counts = sorted(int(assoc.views_seen(n).mean()) for n in range(2))
    assert counts == [2, 4]
    assert assoc.main_person() == 0 and (assoc.views_seen(0) == 4).all()  # the most seen is person 0
    reasons = assoc.view_reasons(1)
    assert (reasons[:, :2] == VIEW_REASONS.index("used")).all()
    assert (reasons[:, 2:] == VIEW_REASONS.index("other_person")).all()


def test_false_detection_is_left_alone(rig):
    rng = np.random.default_rng(5)
    people = walker(rng, (0.0, 0.0), (0.01, 0))[None]
    extra = np.full((F, 4, 33, 3), np.nan)
    # A skeleton-shaped false detection in view 1 only, 200 px off the person.
    extra[:, 1, :, :2] = rig[1].project(people[0, 0])[None] + [200.0, 40.0]
    extra[:, 1, :, 2] = 0.9
    det, truth = detections(rig, people, np.ones((1, F, 4), bool), rng, extra)
    assoc = associate(det, rig)
    assert assoc.num_people == 1
    false = np.isfinite(det.scores) & (truth < 0)
    assert false.sum() == F
    assert (assoc.person[false] == -1).all()
    assert (assoc.status[false] == DETECTION_STATUS.index("alone")).all()
    assert (assoc.view_reasons(0) == VIEW_REASONS.index("used")).all()  # view 1 still serves the person


def test_person_entering_late_gets_a_track_from_then(rig):
    rng = np.random.default_rng(6)
    people = np.stack([walker(rng, (-0.6, 0.0), (0.01, 0)), walker(rng, (0.8, 0.0), (0, 0.01))])
    seen = np.ones((2, F, 4), bool)
    seen[1, :12] = False
    det, truth = detections(rig, people, seen, rng)
    assoc = associate(det, rig)
    assert assoc.num_people == 2
    late = next(n for n, t in identity_map(assoc, truth).items() if t == {1})
    assert assoc.span(late) == (12, F - 1)
    assert (assoc.view_reasons(late)[:12] == VIEW_REASONS.index("not_tracked")).all()
    assert np.isnan(assoc.centers[late, :12]).all() and np.isfinite(assoc.centers[late, 12:]).all()


def test_one_view_following_someone_else_is_left_out(rig):
    """One slot per view, as a single-person detector gives: view 3 follows the other person."""
    rng = np.random.default_rng(7)
    people = np.stack([walker(rng, (-0.6, 0.0), (0.01, 0)), walker(rng, (0.9, 0.2), (0, 0.01))])
    seen = np.zeros((2, F, 4), bool)
    seen[0, :, :3] = True
    seen[1, :, 3] = True
    det, truth = detections(rig, people, seen, rng)
    det = Detections2D(det.cameras, np.nanmax(np.nan_to_num(det.keypoints, nan=-np.inf), 2, keepdims=True),
                       det.boxes[:, :, :1], np.nanmax(det.scores, 2, keepdims=True), det.image_sizes, det.format,
                       det.names, det.fps)
    assoc = associate(det, rig)
    assert assoc.num_people == 1
    reasons = assoc.view_reasons(0)
    assert (reasons[:, :3] == VIEW_REASONS.index("used")).all()
    assert (reasons[:, 3] == VIEW_REASONS.index("disagrees")).all()
    dist = pair_distances(det, rig)[:, :3, 0, 3, 0]  # view 3 against the others
    assert np.nanmedian(dist) > 0.2


def test_a_swapped_view_still_joins_its_person(rig):
    rng = np.random.default_rng(8)
    people = walker(rng, (0.0, 0.0), (0.01, 0))[None]
    det, _ = detections(rig, people, np.ones((1, F, 4), bool), rng)
    kp = det.keypoints.copy()
    kp[:, 2] = kp[:, 2][:, :, swap_orders(BLAZEPOSE33)[1]]  # view 2 swaps left and right everywhere
    det = Detections2D(det.cameras, kp, det.boxes, det.scores, det.image_sizes, det.format, det.names, det.fps)
    assoc = associate(det, rig)
    assert assoc.num_people == 1 and (assoc.views_seen(0) == 4).all()


def test_cluster_needs_every_pair_to_agree():
    V, P = 3, 1
    dist = np.full((V, P, V, P), np.nan)
    pairs = {(0, 1): 0.02, (0, 2): 0.5, (1, 2): 0.04}  # view 2 agrees with view 1 only, not with view 0
    for (a, b), d in pairs.items():
        dist[a, 0, b, 0] = dist[b, 0, a, 0] = d
    groups = cluster_frame(dist, np.ones((V, P), bool), 0.1)
    assert groups == [{0: 0, 1: 0}]


def test_choose_people_orders_and_checks(rig):
    rng = np.random.default_rng(9)
    people = np.stack([walker(rng, (-0.6, 0.0), (0.01, 0)), walker(rng, (0.8, 0.0), (0, 0.01))])
    det, _ = detections(rig, people, np.ones((2, F, 4), bool), rng)
    assoc = associate(det, rig)
    assert choose_people(assoc) == [0, 1]
    assert choose_people(assoc, main=1) == [1, 0]
    assert choose_people(assoc, max_people=1) == [0]
    assert choose_people(assoc, main=1, people=(1,)) == [1]
    with pytest.raises(ConfigError, match="--person 5: no such person"):
        choose_people(assoc, main=5)
    with pytest.raises(ConfigError, match="max_people 0"):
        choose_people(assoc, max_people=0)
    empty = associate(Detections2D(det.cameras, det.keypoints[:, :, :0], det.boxes[:, :, :0], det.scores[:, :, :0],
                                   det.image_sizes, det.format, det.names, det.fps), rig)
    with pytest.raises(FittingError, match="found nobody"):
        choose_people(empty)


def test_config_defaults_documented():
    cfg = AssociationConfig()
    assert 0 < cfg.max_ray_distance < cfg.merge_distance < 1


def test_a_person_split_by_a_chance_group_is_stitched_back():
    """A chance pair of views beside a person starts a second track, and the person's groups, whose centre
    moves 0.3 m with or without one view, then alternate between the two tracks (the real two-person sample's
    man): stitching makes them one track again, and the other person, seen in the same frames, stays apart."""
    cfg = AssociationConfig()
    at = lambda x: np.array([x, 1.0, 0.0])  # noqa: E731
    per_frame = []
    for f in range(30):
        groups, centers = [{0: 1, 1: 1, 2: 1, 3: 0}], [at(2.0)]  # the other person, every frame
        if f < 10 or f % 2 == 0:
            groups.append({0: 0, 1: 0, 2: 0, 3: 1}), centers.append(at(0.0))
        else:
            groups.append({0: 0, 1: 0, 3: 1}), centers.append(at(0.3))
        if f == 10:
            groups[1] = {0: 0, 2: 0, 3: 1}
            groups.append({1: 0, 2: 1}), centers.append(at(0.25))  # the chance pair
        per_frame.append((groups, centers))
    split = _link(per_frame, cfg, 60.0)
    assert len(split) == 3  # the failure this guards against
    tracks = _stitch(split, cfg, 60.0)
    assert len(tracks) == 2
    person = next(t for t in tracks if abs(t.centers[0][0]) < 1)
    assert person.frames == list(range(30))
    assert person.groups[10] == {0: 0, 2: 0, 3: 1}  # in the shared frame, the group of more views
    other = next(t for t in tracks if t is not person)
    assert other.frames == list(range(30)) and all(c[0] == 2.0 for c in other.centers)
