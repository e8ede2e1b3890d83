"""``output/report.html``: one self-contained page (inline CSS, images as base64 PNG) about a session's run.

At the top, a verdict per view (good / check / bad, :mod:`mocap.viz.quality`) with the frames to look at and
each view's worst frames by number, then links to the overlay videos and exports. Then, each present when
its input exists: calibration errors (``calibration.toml`` metadata), detection rates per view
(``output/keypoints2d.h5``), per-view reprojection errors (``output/smpl.npz``), evaluation against ground
truth (naming the run it evaluates), timings, stills of all views at the worst and spread frames, plots,
versions and configuration (the result's metadata).

Nothing is drawn twice: the stills that `mocap viz overlay` saved and the PNGs of `mocap viz plot` are
embedded when they are newer than the fit; only missing ones are drawn, decoding just their frames.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import time
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
.note{color:#666;font-size:.9em} #table-verdict td{text-align:left} .warn{color:#a15c00} .bad{color:#b00020} .good{color:#1b7a1b}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0} figure{margin:1em 0} figcaption{font-size:1em;color:#333} pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.8em;max-height:30em}
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
    verdict: list = field(default_factory=list)  # mocap.viz.quality.ViewQuality per view
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, href relative to the page)
    video: str | None = None  # href of the grid video, played inline


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

    kp = read_keypoints(path, occluders=False)
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


def people_table(root: Path) -> Table | None:
    """One row per person fitted (``output/people/<id>/smpl.npz``): frames fitted, views used, mean
    reprojection error, and view-frames left out with their commonest reason; None with fewer than two."""
    import json

    from mocap.viz.result import load_result, valid_frames

    paths = sorted((root / "output" / "people").glob("*/smpl.npz"))
    if len(paths) < 2:
        return None
    rows = []
    for path in paths:
        seq = load_result(path)
        reasons, names = seq.extra.get("view_reasons"), json.loads(str(seq.extra.get("view_reason_names", "[]")))
        err = np.asarray(seq.extra.get("reprojection_error_px", np.full((1, 1), np.nan)), np.float64)
        used = np.asarray(seq.extra.get("views_used", np.zeros((1, 1), bool)))
        out = reasons[(reasons != 0) & (reasons != names.index("not_tracked"))] if reasons is not None else np.zeros(0, int)
        common = names[np.bincount(out).argmax()].replace("_", " ") if out.size else "-"
        rows.append([path.parent.name, int(valid_frames(seq).sum()), _fmt(used.sum(1).mean(), 1),
                     _fmt(np.nanmean(err) if np.isfinite(err).any() else None), f"{out.size} ({common})"])
    return Table("People", ["person", "frames fitted", "views per frame", "mean reprojection (px)",
                            "view-frames left out (commonest reason)"], rows,
                 "every person found and fitted; output/smpl.npz is the main subject", "people")


def eval_table(metrics, run: str = "") -> Table:
    """The summary of `mocap.eval` metrics (millimetres); ``run`` says which fit they evaluate."""
    rows = [["MPJPE (pelvis-aligned)", _fmt(metrics.mpjpe, 1)], ["PA-MPJPE", _fmt(metrics.pa_mpjpe, 1)],
            ["PVE", _fmt(metrics.pve, 1)], ["global joint error (no alignment)", _fmt(metrics.global_mpjpe, 1)],
            ["acceleration error (mm/frame²)", _fmt(metrics.accel_error, 1)],
            ["frames evaluated (%)", _fmt(100 * metrics.frames_evaluated, 1)]]
    title = "Accuracy against ground truth" + (f": {run}" if run else "")
    return Table(title, ["metric", "value (mm)"], rows, "; ".join(metrics.notes), "eval")


def run_name(meta: dict) -> str:
    """Which fit ``output/smpl.npz`` holds, from its metadata: the Shape ReFit run or a plain one."""
    shape = (meta or {}).get("shape_file")
    if shape:
        return f"output/smpl.npz, the Shape ReFit run (shape held from {Path(shape).name})"
    return "output/smpl.npz, shape fitted with the motion"


def timings_table(timings: dict[str, float]) -> Table:
    rows = [[k, _fmt(float(v), 1)] for k, v in timings.items()]
    rows.append(["total", _fmt(float(sum(timings.values())), 1)])
    return Table("Timings", ["stage", "seconds"], rows, "wall-clock seconds as each stage recorded them", "timings")


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


def _newer(path: Path, than: Path) -> bool:
    return path.is_file() and path.stat().st_mtime >= than.stat().st_mtime


def overlay_stills(session_dir: Path, frames) -> dict[int, bytes]:
    """PNG of all views with the fit drawn, per frame of ``frames``: the ones `mocap viz overlay` saved after the
    current fit was written, the others drawn now from one pass per video."""
    from mocap.viz.manifest import saved_stills

    root = Path(session_dir)
    saved = saved_stills(root / "output" / "overlay", root / "output" / "smpl.npz")
    stills = {f: saved[f].read_bytes() for f in frames if f in saved}
    missing = [f for f in frames if f not in stills]
    if missing:
        from mocap.viz.overlay import load_scene

        scene = load_scene(root, "shaded", missing)
        sizes = {c: scene.footage_size(c) for c in scene.cameras}
        for n, f, footage in scene.footage(sizes):
            stills[f] = png_bytes(scene.still(n, footage))
    return stills


def _still_caption(f: int, quality) -> str:
    worst = [f"worst frame of {q.camera} ({e:.0f} px)" for q in quality if q.worst and q.worst[0][0] == f
             for e in [q.worst[0][1]]]
    return f"Frame {f}" + (": " + ", ".join(worst) if worst else "")


def _links(root: Path, page: Path) -> tuple[list[tuple[str, str]], str | None]:
    """(label, relative href) of the overlay videos and exported files, and the grid video's href."""
    out = root / "output"
    base = page.parent.resolve()
    rel = lambda p: Path(os.path.relpath(p.resolve(), base)).as_posix()  # noqa: E731
    links = [(f"overlay video: {p.name}", rel(p)) for p in sorted((out / "overlay").glob("*.mp4"))
             if not p.name.startswith(".")]
    exports = (".bvh", ".fbx", ".glb", ".trc", ".c3d", ".csv")
    links += [(f"export: {p.name}", rel(p)) for p in sorted(out.glob("*")) if p.suffix.lower() in exports]
    links += [(f"data: {p.name}", rel(p)) for p in sorted(out.glob("*")) if p.suffix.lower() in (".npz", ".h5")]
    grid = out / "overlay" / "grid.mp4"
    return links, rel(grid) if grid.is_file() else None


def _plots(root: Path, result, metrics, gt_given: bool) -> list[tuple[str, bytes]]:
    """The error and joint-angle plots: `mocap viz plot`'s PNGs when newer than the fit (and no ground truth
    asks for a different error plot), else drawn now."""
    from mocap.viz.plot import plot_errors, plot_joint_angles

    smpl = root / "output" / "smpl.npz"
    out = []
    errors_png, angles_png = root / "output" / "errors.png", root / "output" / "joint_angles.png"
    if metrics is None and not gt_given and _newer(errors_png, smpl):
        out.append(("Per-frame errors", errors_png.read_bytes()))
    else:
        fig = plot_errors(result, metrics)
        if fig is not None:
            out.append(("Per-frame errors", figure_png(fig)))
    angles = angles_png.read_bytes() if _newer(angles_png, smpl) else figure_png(plot_joint_angles(result))
    return out + [("Joint angles", angles)]


def _stage_times(root: Path, meta: dict, timings: dict[str, float] | None) -> dict[str, float]:
    """Seconds per stage: the fit's own record, the overlay's manifest, and the caller's ``timings``."""
    from mocap.viz.manifest import read_manifest

    times = {k: float(v) for k, v in (meta or {}).get("timings_s", {}).items()}
    seconds = read_manifest(root / "output" / "overlay").get("seconds")
    if isinstance(seconds, (int, float)):
        times["overlay videos"] = float(seconds)
    times.update(timings or {})
    return times


def collect(session_dir: str | os.PathLike, gt: str | os.PathLike | None = None, timings: dict[str, float] | None = None,
            overlay_frames: int = 3, plots: bool = True, page: str | os.PathLike | None = None) -> ReportData:
    """Gather the report's content from the session's files. ``gt``: ground truth to evaluate against (default
    ``SESSION/ground_truth.npz`` when present and `mocap.eval` exists); ``overlay_frames``: stills spread over the
    sequence (besides each view's worst frame; 0 for none); ``page``: where the page goes, for relative links."""
    from mocap import __version__
    from mocap.viz.plot import evaluate_against, reprojection_errors
    from mocap.viz.quality import still_frames, view_quality
    from mocap.viz.result import load_result

    started = time.perf_counter()
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
    detection = detection_table(root / "output" / "keypoints2d.h5")
    for t in (calibration_table(root / "calibration.toml"), detection):
        if t is not None:
            data.tables.append(t)
    data.links, data.video = _links(root, Path(page) if page is not None else root / "output" / "report.html")
    smpl = root / "output" / "smpl.npz"
    result = load_result(smpl) if smpl.is_file() else None
    metrics = None
    if result is not None:
        data.meta = result.meta
        data.notes += list((result.meta or {}).get("calibration_warnings", []))
        data.facts["body model"] = result.surface_model
        data.facts["frames"] = f"{result.num_frames} at {result.fps:g} fps"
        data.facts["fit"] = run_name(result.meta)
        rep = reprojection_errors(result)
        if rep is not None:
            rates = {r[0]: float(r[3]) / 100 for r in detection.rows} if detection is not None else None
            data.verdict = view_quality(rep[0], rep[1], rates)
            data.tables.append(reprojection_table(result))
        people = people_table(root)
        if people is not None:
            data.tables.append(people)
        gt_path = Path(gt) if gt is not None else root / "ground_truth.npz"
        if gt_path.is_file():
            try:
                metrics = evaluate_against(smpl, gt_path)
                data.tables.append(eval_table(metrics, run_name(result.meta)))
            except Exception as e:  # noqa: BLE001 - the report shows what it can and says what it could not
                data.notes.append(f"evaluation against {gt_path.name} skipped: {e}")
    else:
        data.notes.append("no output/smpl.npz: run `mocap run` for the fit's sections")
    if result is not None and overlay_frames:
        frames = still_frames(result, count=overlay_frames)
        try:
            stills = overlay_stills(root, frames)
            data.images += [(_still_caption(f, data.verdict), stills[f]) for f in sorted(stills)]
        except Exception as e:  # noqa: BLE001
            data.notes.append(f"overlay frames skipped: {e}")
    if result is not None and plots:
        data.images += _plots(root, result, metrics, gt is not None)
    stage_times = _stage_times(root, data.meta, timings)
    stage_times["report"] = time.perf_counter() - started
    data.tables.append(timings_table(stage_times))
    return data


_VERDICT_CLASS = {"good": "good", "check": "warn", "bad": "bad"}


def _verdict_html(data: ReportData) -> list[str]:
    from mocap.viz.quality import frame_ranges

    e = html.escape
    out = ['<h2 id="verdict">Verdict</h2>', '<table id="table-verdict"><thead><tr><th>camera</th><th>verdict</th>'
           "<th>median (px)</th><th>95th pct (px)</th><th>frames to look at</th><th>worst frames (px)</th>"
           "<th>why</th></tr></thead><tbody>"]
    for q in data.verdict:
        worst = ", ".join(f"{f} ({err:.0f})" for f, err in q.worst)
        out.append(f'<tr><td>{e(q.camera)}</td><td class="{_VERDICT_CLASS[q.verdict]}"><b>{e(q.verdict)}</b></td>'
                   f"<td>{e(_fmt(q.median_px, 1))}</td><td>{e(_fmt(q.p95_px, 1))}</td>"
                   f"<td>{e(frame_ranges(q.look) or '–')}</td><td>{e(worst or '–')}</td><td>{e('; '.join(q.reasons) or '–')}</td></tr>")
    out.append("</tbody></table>")
    out.append('<p class="note">A frame needs a look when its reprojection error exceeds 2.5 x the median of all views '
               "(at least 8 px); a view is <i>bad</i> when over 20 % of its frames do, or it found the person in fewer "
               "than half of the frames. Frames are numbered from 0, as in the overlay videos.</p>")
    return out


def _links_html(data: ReportData) -> list[str]:
    e = html.escape
    out = ['<h2 id="files">Videos and files</h2>']
    if data.video:
        out.append(f'<video controls muted preload="metadata" src="{e(data.video)}" style="max-width:100%;max-height:720px">'
                   "</video>")
    out.append("<ul>" + "".join(f'<li><a href="{e(href)}">{e(label)}</a></li>' for label, href in data.links) + "</ul>")
    return out


def render_html(data: ReportData) -> str:
    """The page as a string: inline CSS, images embedded, every text escaped."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{e(data.title)}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>", f"<h1>{e(data.title)}</h1>", '<p class="meta">']
    out.append("<br>".join(f"<b>{e(k)}</b>: {e(str(v))}" for k, v in data.facts.items()))
    out.append("</p>")
    if data.verdict:
        out += _verdict_html(data)
    if data.links:
        out += _links_html(data)
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
        out.append('<h2 id="figures">Figures</h2>')
        out.append('<p class="note">Stills: the fitted body mesh (blue), the detected keypoints (green circles) and the '
                   "same keypoints on the fitted body (magenta crosses), joined by a line.</p>")
        for caption, png in data.images:
            b64 = base64.b64encode(png).decode("ascii")
            out.append(f'<figure><img alt="{e(caption)}" src="data:image/png;base64,{b64}"><figcaption>'
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
    path = Path(out) if out is not None else Path(session_dir) / "output" / "report.html"
    data = collect(session_dir, gt, timings, overlay_frames, plots, page=path)
    data.tables[0:0] = list(extra_tables)
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(data), encoding="utf-8")
    return path
