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
