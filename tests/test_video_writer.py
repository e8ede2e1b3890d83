"""The H.264 writer: what a decoder reads back, the container's layout, the fallback, and a browser playing it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mocap.io import video_writer  # noqa: E402
from mocap.io.video import probe, read_frames  # noqa: E402
from mocap.io.video_writer import VideoFallbackWarning, VideoWriter, h264_available  # noqa: E402
from tests.browser import needs_chromium, play  # noqa: E402

needs_h264 = pytest.mark.skipif(not h264_available(), reason="PyAV with libx264 not installed")


def _frames(n=30, size=(96, 64)):
    """Frames with a moving bright square on a gradient: any frame mix-up or shift shows."""
    w, h = size
    base = np.add.outer(np.arange(h), np.arange(w)).astype(np.float64) / (w + h) * 120
    out = []
    for i in range(n):
        img = np.repeat(base[..., None], 3, 2).astype(np.uint8)
        img[10:30, 3 * i % (w - 20):3 * i % (w - 20) + 20] = (40, 200, 240)
        out.append(img)
    return out


def _top_level_boxes(path):
    data = path.read_bytes()
    boxes, i = [], 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        boxes.append(data[i + 4:i + 8].decode("latin-1"))
        if size < 8:
            break
        i += size
    return boxes


@needs_h264
def test_h264_round_trip_and_layout(tmp_path):
    import av

    frames = _frames()
    path = tmp_path / "v.mp4"
    with VideoWriter(path, (96, 64), 30.0) as w:
        for f in frames:
            w.write(f)
    assert w.codec == "h264"
    back = list(read_frames(path))
    assert len(back) == len(frames) and probe(path).fps == pytest.approx(30.0)
    for a, b in zip(frames, back):
        assert np.abs(a.astype(int) - b).mean() < 4  # lossy, but the same picture (the square moves 3 px a frame)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
    boxes = _top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart: the index before the data


def test_odd_sizes_and_wrong_frames_are_refused(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "v.mp4", (95, 64), 30.0)
    with pytest.raises(ValueError, match="expected"):
        with VideoWriter(tmp_path / "v.mp4", (96, 64), 30.0) as w:
            w.write(np.zeros((64, 94, 3), np.uint8))
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_fallback_warns_and_writes_mp4v(tmp_path, monkeypatch):
    monkeypatch.setattr(video_writer, "h264_available", lambda: False)
    path = tmp_path / "v.mp4"
    with pytest.warns(VideoFallbackWarning, match="browsers"):
        with VideoWriter(path, (96, 64), 30.0) as w:
            for f in _frames(5):
                w.write(f)
    assert w.codec == "mp4v" and probe(path).frames == 5


@needs_h264
@needs_chromium
def test_chromium_plays_the_h264_file(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoFallbackWarning)
        with VideoWriter(path, (96, 64), 30.0) as w:
            for f in _frames(45):
                w.write(f)
    ready, duration, error = play(path, tmp_path)
    assert error == 0 and ready >= 2 and duration == pytest.approx(1.5, abs=0.05)
    # The control: the fallback's MPEG-4 Part 2 does not play (MEDIA_ERR_SRC_NOT_SUPPORTED), so the check can fail.
    monkeypatch.setattr(video_writer, "h264_available", lambda: False)
    with pytest.warns(VideoFallbackWarning):
        with VideoWriter(tmp_path / "old.mp4", (96, 64), 30.0) as w:
            for f in _frames(45):
                w.write(f)
    assert play(tmp_path / "old.mp4", tmp_path)[2] == 4
