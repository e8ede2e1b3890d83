"""The video reader: exact frame counts and seeking, checked on videos whose frames carry their own index."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from mocap.errors import InputDataError
from mocap.io.video import probe, read_frames

W, H, BITS = 160, 96, 8


def indexed_frame(i: int) -> np.ndarray:
    """A frame showing ``i`` in binary as white blocks, large enough to survive lossy compression."""
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(BITS):
        if i >> b & 1:
            img[16:48, b * 20:b * 20 + 20] = 255
    img[60:, :] = (i * 37 % 256, 90, 200)
    return img


def frame_index(img: np.ndarray) -> int:
    return sum(1 << b for b in range(BITS) if img[32, b * 20 + 10].mean() > 127)


def write_indexed(path: Path, n: int, fourcc: str, fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(indexed_frame(i))
    writer.release()
    return path


@pytest.fixture(params=[("mp4v", "mp4"), ("MJPG", "avi")])
def video(request, tmp_path) -> Path:
    fourcc, ext = request.param
    return write_indexed(tmp_path / f"v.{ext}", 150, fourcc)


def test_probe_counts_frames_and_rate(video):
    info = probe(video)
    assert (info.frames, info.width, info.height, info.kind) == (150, W, H, "video")
    assert info.fps == pytest.approx(25.0)


def test_sequential_read_yields_every_frame_in_order(video):
    assert [frame_index(f) for f in read_frames(video)] == list(range(150))


@pytest.mark.parametrize("start", [1, 11, 12, 13, 37, 100, 149])
def test_seeking_lands_on_the_asked_frame(video, start):
    # mp4v writes a keyframe every 12 frames: starts on, before and after one
    sequential = list(read_frames(video))
    seeked = list(read_frames(video, start, min(start + 3, 150)))
    assert [frame_index(f) for f in seeked] == list(range(start, min(start + 3, 150)))
    np.testing.assert_array_equal(seeked[0], sequential[start])


def test_prefetch_gives_the_same_frames(video):
    plain = list(read_frames(video, 5, 40))
    ahead = list(read_frames(video, 5, 40, prefetch=3))
    assert len(ahead) == 35 and all(np.array_equal(a, b) for a, b in zip(plain, ahead))


def test_rgb_frames_are_the_bgr_frames_reversed(video):
    bgr = list(read_frames(video, 0, 20))
    for rgb in (list(read_frames(video, 0, 20, rgb=True)), list(read_frames(video, 0, 20, prefetch=3, rgb=True))):
        assert len(rgb) == 20 and all(np.array_equal(a, b[:, :, ::-1]) for a, b in zip(rgb, bgr))


def test_prefetch_stops_cleanly_when_abandoned(video):
    frames = read_frames(video, prefetch=2)
    first = next(frames)
    frames.close()  # the consumer stops early: the decoding thread must end, not block
    assert frame_index(first) == 0


def test_reading_past_the_end_raises(video):
    with pytest.raises(InputDataError, match="ends at frame 150"):
        list(read_frames(video, 140, 160))


def test_wrong_header_count_is_corrected(tmp_path):
    """A truncated AVI keeps its header's frame count (150); probe must report the frames really there."""
    full = write_indexed(tmp_path / "full.avi", 150, "MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert cv2.VideoCapture(str(cut)).get(cv2.CAP_PROP_FRAME_COUNT) == 150
    decodable = [frame_index(f) for f in read_frames(cut)]
    info = probe(cut)
    assert 0 < info.frames < 150 and info.frames == len(decodable)
    assert decodable == list(range(info.frames))
    quick = probe(cut, exact=False)  # trusts the header: reading its frames must then fail loudly, not fall short
    assert quick.frames == 150 and (quick.width, quick.height) == (info.width, info.height)
    with pytest.raises(InputDataError, match="video ends at frame"):
        list(read_frames(cut, 0, quick.frames))


def test_image_folder(tmp_path):
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"img_{i}.png"), indexed_frame(i))  # img_10 sorts after img_9
    info = probe(tmp_path)
    assert (info.frames, info.kind, info.fps) == (12, "images", None)
    assert [frame_index(f) for f in read_frames(tmp_path, 8, 12)] == [8, 9, 10, 11]
    with pytest.raises(InputDataError, match="12 images"):
        list(read_frames(tmp_path, 0, 13))
