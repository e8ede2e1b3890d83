"""``output/report.html``: one self-contained page (inline CSS, images as base64 PNG) about a session's run.

Sections, each present when its input exists: calibration errors (``calibration.toml`` metadata), detection
rates per view (``output/keypoints2d.h5``), per-view reprojection errors and quality flags
(``output/smpl.npz``), evaluation against ground truth, overlay frames, plots, per-stage timings, versions
and configuration (the result's metadata).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mocap.errors import InputDataError
from mocap.io.atomic import atomic_path

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em} th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f0f3f7} td:first-child,th:first-child{text-align:left}
.note{color:#666;font-size:.9em} .warn{color:#a15c00} .bad{color:#b00020} .good{color:#1b7a1b}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0} pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.8em;max-height:30em}
.meta{color:#555}
"""


@dataclass
class Table:
    """A titled table: ``rows`` of cells (already formatted strings or numbers)."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence]
    note: str = ""
    id: str = ""


@dataclass
class ReportData:
    """Everything the page shows; built by :func:`collect` and extendable by callers (e.g. `mocap demo`)."""

    title: str
    facts: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (caption, PNG bytes)
    meta: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _fmt(x, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, (float, np.floating)):
        return "–" if not np.isfinite(x) else f"{x:.{digits}f}"
    return str(x)


def calibration_table(path: Path) -> Table | None:
    """Per-camera calibration errors from the TOML's ``[metadata]`` (``cameras``: frames, mean_px, p95_px,
    verdict; ``error``), or a one-line table naming where the calibration came from."""
    if not path.is_file():
        return None
    try:
        meta = tomllib.loads(path.read_text()).get("metadata", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    cams = meta.get("cameras")
    if isinstance(cams, dict) and cams:
        rows = [[c, _fmt(d.get("frames")), _fmt(d.get("mean_px")), _fmt(d.get("p95_px")), _fmt(d.get("verdict"))]
                for c, d in cams.items()]
        return Table("Calibration", ["camera", "board frames", "mean error (px)", "95th pct (px)", "verdict"], rows,
                     f"overall mean reprojection error {_fmt(meta.get('error'))} px", "calibration")
    source = meta.get("source") or meta.get("imported_from") or "unknown source"
    error = meta.get("error") or None  # anipose writes 0 when it has no figure
    return Table("Calibration", ["source", "stored error (px)"], [[str(source), _fmt(error)]],
                 "no per-camera board errors stored (e.g. a calibration imported from another tool)", "calibration")


def detection_table(path: Path) -> Table | None:
    """Per view: frames, detection rate, mean confidence of the detected keypoints."""
    if not path.is_file():
        return None
    from mocap.io.keypoints_h5 import read_keypoints

    kp = read_keypoints(path)
    rows = []
    for v, cam in enumerate(kp.cameras):
        det = kp.detected[:, v]
        conf = kp.keypoints[det, v, :, 2]
        rows.append([cam, kp.num_frames, int(det.sum()), f"{100 * det.mean():.1f}",
                     _fmt(float(np.nanmean(conf)) if conf.size and np.isfinite(conf).any() else None)])
    return Table("Detection", ["camera", "frames", "detected", "rate (%)", "mean confidence"], rows,
                 f"detector: {kp.meta.get('detector', kp.format)} ({kp.format}, {len(kp.names)} keypoints)", "detection")


def reprojection_table(result) -> Table | None:
    """Per view: mean, median, 95th percentile of the per-frame reprojection error (px), frames used."""
    from mocap.viz.plot import reprojection_errors
    from mocap.viz.result import valid_frames

    rep = reprojection_errors(result)
    if rep is None:
        return None
    err, cams = rep
    used = result.extra.get("views_used")
    rows = []
    for v, cam in enumerate(cams):
        e = err[:, v][np.isfinite(err[:, v])]
        n_used = int(np.asarray(used)[:, v].sum()) if used is not None else len(e)
        rows.append([cam, _fmt(e.mean() if e.size else None), _fmt(np.median(e) if e.size else None),
                     _fmt(np.percentile(e, 95) if e.size else None), n_used])
    valid = int(valid_frames(result).sum())
    return Table("Reprojection error of the fit", ["camera", "mean (px)", "median (px)", "95th pct (px)", "frames used"],
                 rows, f"{valid} of {result.num_frames} frames fitted", "reprojection")


def eval_table(metrics) -> Table:
    """The summary of `mocap.eval` metrics (millimetres)."""
    rows = [["MPJPE (pelvis-aligned)", _fmt(metrics.mpjpe, 1)], ["PA-MPJPE", _fmt(metrics.pa_mpjpe, 1)],
            ["PVE", _fmt(metrics.pve, 1)], ["global joint error (no alignment)", _fmt(metrics.global_mpjpe, 1)],
            ["acceleration error (mm/frame²)", _fmt(metrics.accel_error, 1)],
            ["frames evaluated (%)", _fmt(100 * metrics.frames_evaluated, 1)]]
    return Table("Accuracy against ground truth", ["metric", "value (mm)"], rows, "; ".join(metrics.notes), "eval")


def timings_table(timings: dict[str, float]) -> Table:
    rows = [[k, _fmt(float(v), 1)] for k, v in timings.items()]
    rows.append(["total", _fmt(float(sum(timings.values())), 1)])
    return Table("Timings", ["stage", "seconds"], rows, id="timings")


def png_bytes(image: np.ndarray) -> bytes:
    """BGR uint8 image -> PNG bytes."""
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def figure_png(fig, dpi: int = 80) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def overlay_stills(session_dir: Path, count: int = 3, box: tuple[int, int] = (960, 720)) -> list[tuple[str, bytes]]:
    """``count`` frames spread over the sequence, all views in a grid that fits ``box`` (w, h) with the fit drawn.

    A box rather than a height: four portrait views at a fixed height would come out a few pixels wide."""
    from mocap.session import Session
    from mocap.viz.overlay import grid_shape, load_scene, tile

    n = min(Session.load(session_dir).num_frames, _result_frames(session_dir))
    frames = np.unique(np.linspace(0, n - 1, count + 2).round().astype(int)[1:-1]) if n > 2 else np.arange(n)
    scene = load_scene(session_dir, "shaded", frames)
    stills = []
    for f, images in scene.images():
        aspect = max(img.shape[1] / img.shape[0] for img in images)
        rows, cols = grid_shape(len(images))
        h = min(box[1] / rows, box[0] / (cols * aspect))
        cell = (int(h * aspect), int(h))
        stills.append((f"frame {f}", png_bytes(tile(images, cell))))
    return stills


def _result_frames(session_dir: Path) -> int:
    from mocap.viz.result import load_result

    return load_result(Path(session_dir) / "output" / "smpl.npz").num_frames


def collect(session_dir: str | os.PathLike, gt: str | os.PathLike | None = None, timings: dict[str, float] | None = None,
            overlay_frames: int = 3, plots: bool = True) -> ReportData:
    """Gather the report's content from the session's files. ``gt``: ground truth to evaluate against (default
    ``SESSION/ground_truth.npz`` when present and `mocap.eval` exists)."""
    from mocap import __version__
    from mocap.viz.plot import evaluate_against, plot_errors, plot_joint_angles
    from mocap.viz.result import load_result

    root = Path(session_dir)
    if not root.is_dir():
        raise InputDataError(f"{root}: session folder not found")
    if not any((root / rel).is_file() for rel in ("calibration.toml", "output/keypoints2d.h5", "output/smpl.npz")):
        raise InputDataError(f"{root}: nothing to report (no calibration.toml, output/keypoints2d.h5 or "
                             "output/smpl.npz); run `mocap calibrate`, `mocap detect` and `mocap run` first")
    data = ReportData(f"mocap report: {root.resolve().name}")
    data.facts["session"] = str(root.resolve())
    data.facts["written"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    data.facts["mocap"] = __version__
    for t in (calibration_table(root / "calibration.toml"), detection_table(root / "output" / "keypoints2d.h5")):
        if t is not None:
            data.tables.append(t)
    smpl = root / "output" / "smpl.npz"
    result = load_result(smpl) if smpl.is_file() else None
    metrics = None
    if result is not None:
        data.meta = result.meta
        data.notes += list((result.meta or {}).get("calibration_warnings", []))
        data.facts["body model"] = result.surface_model
        data.facts["frames"] = f"{result.num_frames} at {result.fps:g} fps"
        t = reprojection_table(result)
        if t is not None:
            data.tables.append(t)
        gt_path = Path(gt) if gt is not None else root / "ground_truth.npz"
        if gt_path.is_file():
            try:
                metrics = evaluate_against(smpl, gt_path)
                data.tables.append(eval_table(metrics))
            except Exception as e:  # noqa: BLE001 - the report shows what it can and says what it could not
                data.notes.append(f"evaluation against {gt_path.name} skipped: {e}")
    else:
        data.notes.append("no output/smpl.npz: run `mocap run` for the fit's sections")
    stage_times = dict((data.meta or {}).get("timings_s", {}))
    stage_times.update(timings or {})
    if stage_times:
        data.tables.append(timings_table(stage_times))
    if result is not None and overlay_frames:
        try:
            data.images += [(f"Overlay, {cap}", png) for cap, png in overlay_stills(root, overlay_frames)]
        except Exception as e:  # noqa: BLE001
            data.notes.append(f"overlay frames skipped: {e}")
    if result is not None and plots:
        fig = plot_errors(result, metrics)
        if fig is not None:
            data.images.append(("Per-frame errors", figure_png(fig)))
        data.images.append(("Joint angles", figure_png(plot_joint_angles(result))))
    return data


def render_html(data: ReportData) -> str:
    """The page as a string: inline CSS, images embedded, every text escaped."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{e(data.title)}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>", f"<h1>{e(data.title)}</h1>", '<p class="meta">']
    out.append("<br>".join(f"<b>{e(k)}</b>: {e(str(v))}" for k, v in data.facts.items()))
    out.append("</p>")
    for note in data.notes:
        out.append(f'<p class="note warn">{e(note)}</p>')
    for t in data.tables:
        out.append(f'<h2 id="{e(t.id)}">{e(t.title)}</h2>' if t.id else f"<h2>{e(t.title)}</h2>")
        out.append(f'<table id="table-{e(t.id)}">' if t.id else "<table>")
        out.append("<thead><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in t.columns) + "</tr></thead><tbody>")
        for row in t.rows:
            out.append("<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
        if t.note:
            out.append(f'<p class="note">{e(t.note)}</p>')
    if data.images:
        out.append("<h2>Figures</h2>")
        for caption, png in data.images:
            b64 = base64.b64encode(png).decode("ascii")
            out.append(f'<figure><img alt="{e(caption)}" src="data:image/png;base64,{b64}"><figcaption class="note">'
                       f"{e(caption)}</figcaption></figure>")
    if data.meta:
        versions = data.meta.get("versions")
        if isinstance(versions, dict):
            out.append("<h2>Versions</h2><table><tbody>")
            out += [f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in versions.items()]
            out.append("</tbody></table>")
        rest = {k: v for k, v in data.meta.items() if k not in ("versions", "timings_s")}
        out.append("<h2>Configuration and provenance</h2>")
        out.append(f"<pre>{e(json.dumps(rest, indent=2, sort_keys=True, default=str))}</pre>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def write_report(session_dir: str | os.PathLike, out: str | os.PathLike | None = None, gt=None,
                 timings: dict[str, float] | None = None, extra_tables: Sequence[Table] = (), overlay_frames: int = 3,
                 plots: bool = True) -> Path:
    """Write the session's report (default ``SESSION/output/report.html``) atomically; returns its path."""
    data = collect(session_dir, gt, timings, overlay_frames, plots)
    data.tables[0:0] = list(extra_tables)
    path = Path(out) if out is not None else Path(session_dir) / "output" / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(data), encoding="utf-8")
    return path
