"""The report: well-formed HTML with the right numbers, and a non-blank render in headless Chromium."""

from __future__ import annotations

import base64
import html.parser
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from mocap.cli import app
from mocap.viz.report import write_report
from tests.browser import chromium, needs_chromium
from tests.viz_data import make_session

VOID = {"meta", "br", "img", "hr", "input", "link"}


class _Checker(html.parser.HTMLParser):
    """Checks that tags nest, and collects the tables' cell texts by table id."""

    def __init__(self):
        super().__init__()
        self.stack, self.tables, self.images = [], {}, []
        self._table = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self._table = a.get("id")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag in ("td", "th") and self._table is not None:
            self.tables[self._table][-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("session")
    made = make_session(root, cameras=3, frames=6)
    path = write_report(root, timings={"detect": 1.5, "run": 2.5}, overlay_frames=2)
    return root, path, made


def test_report_is_well_formed_with_the_right_numbers(report):
    root, path, made = report
    text = path.read_text()
    p = _Checker()
    p.feed(text)
    p.close()
    assert p.stack == []
    cal = {r[0]: r[1:] for r in p.tables["table-calibration"][1:]}
    assert cal["cam1"] == ["30", "0.40", "0.90", "good"]
    det = {r[0]: r for r in p.tables["table-detection"][1:]}
    assert det["cam0"][1:4] == ["6", "6", "100.0"]
    assert det["cam2"][1:4] == ["6", "5", "83.3"]  # frame 0 of the last view is missing
    rep = {r[0]: r for r in p.tables["table-reprojection"][1:]}
    expected = f"{np.hypot(3.0, -2.0):.2f}"
    assert rep["cam1"][1] == expected and rep["cam1"][2] == expected and rep["cam1"][4] == "6"
    tim = {r[0]: r[1] for r in p.tables["table-timings"][1:]}
    assert {k: tim[k] for k in ("fit", "detect", "run")} == {"fit": "2.0", "detect": "1.5", "run": "2.5"}  # stored, given
    assert float(tim["total"]) == pytest.approx(6.0 + float(tim["report"]), abs=0.11)
    verdict = {r[0]: r[1] for r in p.tables["table-verdict"][1:]}
    assert verdict == {"cam0": "good", "cam1": "good", "cam2": "check"}  # cam2 missed the person in 1 of 6 frames
    assert len(p.images) >= 3 and all(src.startswith("data:image/png;base64,") for src in p.images)
    assert "http://" not in text and "https://" not in text  # self-contained


def test_calibration_table_reads_the_calibrate_stage_metadata(tmp_path):
    from mocap.io.calibration_toml import save_rig
    from mocap.viz.report import calibration_table
    from tests.viz_data import ring_rig

    meta = {"error": 0.37, "cameras": {"cam0": {"frames": 40, "mean_px": 0.31, "p95_px": 0.8, "verdict": "good"},
                                       "cam1": {"frames": 12, "mean_px": 1.4, "p95_px": 3.1, "verdict": "poor"}}}
    save_rig(ring_rig(2), tmp_path / "c.toml", meta)
    t = calibration_table(tmp_path / "c.toml")
    assert [list(map(str, r)) for r in t.rows] == [["cam0", "40", "0.31", "0.80", "good"], ["cam1", "12", "1.40", "3.10", "poor"]]
    assert "0.37" in t.note


def test_eval_table_when_ground_truth_exists(tmp_path):
    pytest.importorskip("mocap.eval.evaluate")
    make_session(tmp_path, cameras=2, frames=4, gt=True)
    path = write_report(tmp_path, overlay_frames=0, plots=False)
    p = _Checker()
    p.feed(path.read_text())
    rows = {r[0]: r[1] for r in p.tables["table-eval"][1:]}
    assert float(rows["MPJPE (pelvis-aligned)"]) > 0 and rows["frames evaluated (%)"] == "100.0"


def test_report_command(tmp_path):
    make_session(tmp_path, cameras=2, frames=3)
    out = CliRunner().invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def _spiky_session(root):
    """cam1 spikes to 50 px at frame 4, cam2 is off by 30 px throughout, cam0 is at 3.6 px."""
    made = make_session(root, cameras=3, frames=6)
    smpl = root / "output" / "smpl.npz"
    arrays = dict(np.load(smpl))
    err = arrays["reprojection_error_px"]
    err[4, 1], err[:, 2] = 50.0, 30.0
    np.savez(smpl, **arrays)
    return made


def test_verdict_worst_frames_and_stills_name_the_frames(tmp_path):
    _spiky_session(tmp_path)
    path = write_report(tmp_path, overlay_frames=1, plots=False)
    p = _Checker()
    p.feed(path.read_text())
    rows = {r[0]: r for r in p.tables["table-verdict"][1:]}
    # Threshold: 2.5 x the median of all 18 errors (3.6 px) is under the 8 px floor, so 8 px.
    assert rows["cam0"][1] == "good" and rows["cam0"][4] == "–"
    assert rows["cam1"][1] == "check" and rows["cam1"][4] == "4" and rows["cam1"][5].startswith("4 (50)")
    assert rows["cam2"][1] == "bad" and rows["cam2"][4] == "0-5"
    text = path.read_text()
    assert text.index('id="verdict"') < text.index('id="calibration"')  # the verdict comes first
    assert "Frame 4: worst frame of cam1 (50 px)" in text


def test_report_reuses_the_overlay_stills_and_links_the_videos(tmp_path, monkeypatch):
    from mocap.io import video
    from mocap.viz.overlay import write_overlays

    _spiky_session(tmp_path)
    res = write_overlays(tmp_path, scale=1.0, grid_height=240)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the report decoded the videos again")

    monkeypatch.setattr(video, "read_frames_resized", no_decoding)
    monkeypatch.setattr(video, "read_frames", no_decoding)
    path = write_report(tmp_path, plots=False)
    p = _Checker()
    text = path.read_text()
    p.feed(text)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in p.images}
    assert {f.read_bytes() for f in res.stills.values()} <= embedded
    assert 'href="overlay/grid.mp4"' in text and 'href="overlay/cam1.mp4"' in text and '<video controls' in text
    # A newer fit makes the stills stale: they are drawn again (and the patched reader says so).
    smpl = tmp_path / "output" / "smpl.npz"
    os.utime(smpl, (smpl.stat().st_mtime + 10,) * 2)
    assert "overlay frames skipped" in write_report(tmp_path, plots=False).read_text()


@needs_chromium
def test_report_renders_in_headless_chromium(report, tmp_path):
    import cv2

    _, path, _ = report
    shot = tmp_path / "shot.png"
    chromium([f"--screenshot={shot}", "--window-size=1280,2000", path.resolve().as_uri()], tmp_path / "profile")
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (2000, 1280)
    assert img.std() > 20  # text, tables and images, not a blank page
