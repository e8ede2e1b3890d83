"""Two real people: Pose2Sim's multi-person demo (4 views; a man on the treadmill, a woman walking round him).

On the first 40 frames this code found both people in 100 % of the frames of every view, and no third;
each person's mask covered their own four torso keypoints (mean > 0.5) in 100 % of cases and the other
person's in 0 %. The limits leave room for MediaPipe build differences.
"""

import numpy as np
import pytest

from mocap.detect.blazepose import DetectorConfig
from mocap.detect.masks import to_image
from mocap.detect.parallel import combine, detect_views
from mocap.io.keypoints_h5 import Detections2D

FRAMES = 40
CAMERAS = ("cam01", "cam02", "cam03", "cam04")
TORSO = [11, 12, 23, 24]  # shoulders and hips


@pytest.fixture(scope="module")
def people(pose2sim_multi_dir) -> Detections2D:
    sources = {c: pose2sim_multi_dir / "videos" / f"{c}.mp4" for c in CAMERAS}
    return combine(detect_views(sources, DetectorConfig(), stop=FRAMES), CAMERAS)


@pytest.mark.shared
@pytest.mark.slow
def test_both_people_found_in_most_frames_of_every_view(people):
    count = people.present.sum(axis=2)  # (F, V)
    two = (count >= 2).mean(axis=0)
    print("frames with both people per view:", two.round(2).tolist())
    assert (two >= 0.75).all(), two
    assert people.num_slots <= 3 and (count <= 3).all()  # no pile of duplicates


def mask_at(det: Detections2D, f: int, v: int, p: int, points: np.ndarray) -> np.ndarray:
    """Mask value of slot p at image points ``(N, 2)`` (nearest pixel; 0 outside the image)."""
    W, H = det.image_sizes[v]
    full = to_image(det.masks[f, v, p], det.mask_boxes[f, v, p], (W, H))
    x, y = np.rint(points).astype(int).T
    ok = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    return np.where(ok, full[np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)], 0.0)


@pytest.mark.shared
@pytest.mark.slow
def test_each_mask_covers_its_person_and_not_the_other(people):
    """Where both people are found: a person's mask covers their own torso keypoints and not the other's
    (the other's torso can be behind this person, so a few frames may show both; most must not)."""
    own, other = [], []
    F, V, _ = people.scores.shape
    for f in range(F):
        for v in range(V):
            slots = np.nonzero(people.present[f, v])[0]
            for p in slots:
                for q in slots:
                    value = mask_at(people, f, v, p, people.keypoints[f, v, q, TORSO, :2]).mean()
                    (own if p == q else other).append(value)
    own, other = np.array(own), np.array(other)
    print(f"own torso covered (mean > 0.5) {np.mean(own > 0.5):.2f}, the other's {np.mean(other > 0.5):.2f}")
    assert len(other) > 0.75 * F * V
    assert np.mean(own > 0.5) >= 0.9 and np.mean(other > 0.5) <= 0.15


@pytest.mark.shared
@pytest.mark.slow
def test_looking_again_finds_people_a_view_missed_and_the_association_takes_them(people, pose2sim_multi_dir):
    """Where the other views place a person a view's detector missed, the view is read again there
    (`mocap.detect.guided`). Each person's detections are taken out of one view in three frames: looking
    again finds them there, where the detector had them, and every reading kept joins that same person in
    the association."""
    import dataclasses

    from mocap.calib.convert import import_rig
    from mocap.detect.guided import Look, look_again, with_readings
    from mocap.fitting.missed import missed
    from mocap.fitting.tracking import associate

    rig = import_rig(pose2sim_multi_dir / "calibration" / "Calib.qca.txt", "qualisys").subset(CAMERAS)
    whole = associate(people, rig)
    keypoints, boxes, scores = people.keypoints.copy(), people.boxes.copy(), people.scores.copy()
    hidden = {}  # (frame, view) -> the detector's keypoints taken out
    for n in range(whole.num_people):
        slots = whole.slots(n)
        seen = slots >= 0
        v = int(np.argmax(seen.sum(0)))
        for f in np.flatnonzero(seen[:, v] & (seen.sum(1) >= 3))[::7][:3]:
            hidden[f, v] = keypoints[f, v, slots[f, v]].copy()
            keypoints[f, v, slots[f, v]], boxes[f, v, slots[f, v]], scores[f, v, slots[f, v]] = np.nan, np.nan, np.nan
    assert len(hidden) >= 3
    det0 = dataclasses.replace(people, keypoints=keypoints, boxes=boxes, scores=scores)
    assoc = associate(det0, rig)
    misses = missed(det0, rig, assoc)
    det, added = det0, []
    for v, cam in enumerate(CAMERAS):
        mine = [m for m in misses if m.view == v]
        looks = [Look(m.frame, m.expected, det0.keypoints[m.frame, v][det0.present[m.frame, v]]) for m in mine]
        readings = look_again(pose2sim_multi_dir / "videos" / f"{cam}.mp4", looks, masks=True)
        for r in readings:
            added.append((r.frame, v, next(m.person for m in mine if m.frame == r.frame)))
            if (r.frame, v) in hidden:  # read where the detector had the person
                was = hidden[r.frame, v]
                ok = (was[:, 2] >= 0.5) & (r.keypoints[:, 2] >= 0.5)
                diagonal = np.linalg.norm(np.nanmax(was[:, :2], 0) - np.nanmin(was[:, :2], 0))
                assert np.median(np.linalg.norm(r.keypoints[ok, :2] - was[ok, :2], axis=1)) < 0.05 * diagonal
        det = with_readings(det, v, readings)
    print(f"{len(misses)} places looked at, {len(added)} people found; {len(hidden)} hidden")
    found = {(f, v) for f, v, _ in added}
    assert sum(place in found for place in hidden) >= len(hidden) - 1
    after = associate(det, rig)
    # The same people, each now seen in more view-frames.
    assert after.num_people == assoc.num_people
    for n in range(assoc.num_people):
        P = assoc.person.shape[2]  # the readings' slots come after the detector's
        same = int(np.argmax([((after.person[..., :P] == m) & (assoc.person == n)).sum() for m in range(after.num_people)]))
        assert after.views_seen(same).sum() >= assoc.views_seen(n).sum()
        for f, v, who in added:
            if who == n:
                slot = np.flatnonzero(det.guided[f, v])
                assert (after.person[f, v, slot] == same).any(), (f, v, n)