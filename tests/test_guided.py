"""Looking again for missed people: where the other views put them (`mocap.fitting.missed`), what a crop there
reads (`mocap.detect.guided`, with a stand-in landmark model whose answers are known), and the readings added
to the detections and taken out again."""

import numpy as np
import pytest

from mocap.detect.guided import FAR, GATE, Look, Reading, read_person, with_readings, without_guided
from mocap.detect.tracker import CROP
from mocap.fitting.missed import missed
from mocap.fitting.tracking import associate

from tests.test_association import F, detections, walker


@pytest.fixture
def rig():
    from mocap.synth.rig import ring_rig

    return ring_rig(4, np.random.default_rng(1))


def test_a_view_that_missed_a_person_is_told_where_they_are(rig):
    rng = np.random.default_rng(5)
    people = np.stack([walker(rng, (-0.6, 0.0), (0.01, 0)), walker(rng, (0.7, 0.2), (0, 0.01))])
    seen = np.ones((2, F, 4), bool)
    seen[1, 10:20, 2] = False  # view 2 misses person 1 in frames 10-19
    seen[0, 5, 1] = seen[0, 5, 3] = False  # person 0 seen by 2 views in frame 5: still placed
    det, truth = detections(rig, people, seen, rng)
    assoc = associate(det, rig)
    ids = {n: next(iter(set(truth[assoc.person == n].tolist()))) for n in range(assoc.num_people)}
    got = missed(det, rig, assoc)
    places = sorted((m.frame, m.view, ids[m.person]) for m in got)
    assert places == sorted([(f, 2, 1) for f in range(10, 20)] + [(5, 1, 0), (5, 3, 0)])
    for m in got:
        true_uv = rig[m.view].project(people[ids[m.person], m.frame])
        err = np.linalg.norm(m.expected - true_uv, axis=-1)  # 2 px noise in 2 or 3 other views
        diag = np.linalg.norm(true_uv.max(0) - true_uv.min(0))  # well within the reading's gate
        assert np.median(err) < 0.02 * diag and err.max() < GATE / 2 * diag


def test_a_person_outside_a_view_is_not_looked_for(rig):
    rng = np.random.default_rng(6)
    people = walker(rng, (0.0, 0.0), (0.0, 0.0))[None]
    seen = np.ones((1, F, 4), bool)
    seen[0, 3, 0] = False
    det, _ = detections(rig, people, seen, rng)
    assoc = associate(det, rig)
    assert [(m.frame, m.view) for m in missed(det, rig, assoc)] == [(3, 0)]
    narrow = rig.subset(rig.names)  # the same cameras with view 0's image shrunk to a corner: the person is outside
    import dataclasses

    from mocap.cameras import CameraRig
    tiny = CameraRig(tuple(dataclasses.replace(c, image_size=(40, 40)) if i == 0 else c for i, c in enumerate(narrow)))
    assert missed(det, tiny, assoc) == []


class StandIn:
    """A landmark model that answers the frame pixels ``answer`` (K, 3) mapped into each crop it is given,
    and records the crops."""

    def __init__(self, answer):
        self.answer, self.crops, self.M = answer, [], None

    def __call__(self, crop):
        self.crops.append(crop.copy())
        # frame pixels -> crop pixels (centres at integers on both sides) -> normalised edge to edge, as MediaPipe
        uv = self.answer[:, :2] @ self.M[:, :2].T + self.M[:, 2]
        norm = (uv + 0.5) / CROP
        return np.concatenate([norm, self.answer[:, 2:]], 1), None


def _look(frame_size=(400, 300)):
    rng = np.random.default_rng(0)
    expected = np.stack([rng.uniform(150, 230, 20), rng.uniform(60, 240, 20)], 1)  # a person 180 px tall
    other = np.concatenate([expected + [60, 0], np.ones((20, 1))], 1)  # someone beside them, overlapping
    frame = np.full((frame_size[1], frame_size[0], 3), 200, np.uint8)
    return expected, other, frame


def _read(answer, expected, other, frame):
    from mocap.detect import crops

    graph = StandIn(answer)
    box = np.concatenate([expected.min(0), expected.max(0)])
    side = 1.5 * max(box[2:] - box[:2])
    graph.M = crops.crop_image(frame, (box[:2] + box[2:]) / 2, side / 200.0, CROP)[1]
    return graph, read_person(graph, frame, Look(3, expected, other[None]))


def test_a_reading_where_the_person_is_expected_is_kept_and_its_far_points_lose_confidence():
    expected, other, frame = _look()
    diag = np.hypot(*(expected.max(0) - expected.min(0)))
    answer = np.concatenate([expected + 2.0, np.full((20, 1), 0.9)], 1)
    answer[4, :2] += 1.5 * FAR * diag  # one landmark far from where the others put it
    graph, got = _read(answer, expected, other, frame)
    assert isinstance(got, Reading) and got.frame == 3
    np.testing.assert_allclose(got.keypoints[:, :2], answer[:, :2], atol=1e-6)
    assert got.keypoints[4, 2] == 0 and (np.delete(got.keypoints[:, 2], 4) == 0.9).all()
    # The other person's box is blacked out where it does not overlap the expected person's own box.
    crop = graph.crops[0]
    right = other[:, 0].max()
    u = int(graph.M[0, 0] * (right - 5) + graph.M[0, 2])
    v = int(graph.M[1, 1] * 150 + graph.M[1, 2])
    assert (crop[v, u] == 0).all()
    u_own = int(graph.M[0, 0] * (expected[:, 0].min() + 5) + graph.M[0, 2])
    assert (crop[v, u_own] == 200).all()


def test_a_reading_of_someone_else_is_refused():
    expected, other, frame = _look()
    diag = np.hypot(*(expected.max(0) - expected.min(0)))
    shifted = np.concatenate([expected + [1.5 * GATE * diag, 0], np.full((20, 1), 0.9)], 1)
    assert _read(shifted, expected, other, frame)[1] is None  # beside where expected
    assert _read(other.copy(), expected, other, frame)[1] is None  # the person the detector holds


def test_readings_fill_free_slots_and_are_taken_out_again():
    from tests.test_detections_h5 import _detections

    det = _detections(F=5, P=3)
    kp = np.full((4, 3), 50.0)
    readings = [Reading(1, kp, None), Reading(1, kp + 1, None), Reading(2, kp + 2, None)]
    out = with_readings(det, 0, readings)
    # Frame 1 of view 0 had slot 2 free: the first reading goes there, the second to a new slot 3.
    assert out.num_slots == 4 and out.guided.sum() == 3
    assert out.guided[1, 0, 2] and out.guided[1, 0, 3] and out.guided[2, 0, 3]
    np.testing.assert_array_equal(out.keypoints[1, 0, 3], kp + 1)
    assert out.masks[1, 0, 3].sum() == 0 and np.isnan(out.mask_boxes[1, 0, 3]).all()  # read without a mask
    np.testing.assert_array_equal(out.keypoints[:, :, :3][~out.guided[:, :, :3]], det.keypoints[~out.guided[:, :, :3]])
    back = without_guided(out)
    assert back.guided is None and not back.present[out.guided].any()
    np.testing.assert_array_equal(back.present[:, :, :3], det.present)
