"""`mocap eval`: a motion against ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mocap.cli._base import app, console, styled



@app.command("eval")
def eval_(
    result: Path = typer.Argument(..., help="Motion to evaluate: our npz, AMASS npz (z-up detected; --body for files naming none), or SPIN/ReFit npz (pose, shape, trans); or a folder of people (output/people)."),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth npz (e.g. a synthetic session's ground_truth.npz); or a folder of people (its ground_truth/)."),
    offset: int = typer.Option(0, help="Result frame i is ground-truth frame i + OFFSET."),
    body: Optional[str] = typer.Option(None, help="Body model for both files instead of the ones they name."),
    gt_body: Optional[str] = typer.Option(None, help="Body model for the ground truth only."),
    gender: Optional[str] = typer.Option(None, "--gender", help="neutral, male or female for both files (default: each file's)."),
    up: Optional[str] = typer.Option(None, "--up", help="y or z: the up axis of files that neither say nor name their body (default: detected)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the numbers (mm) to this JSON file."),
    plot: Optional[Path] = typer.Option(None, help="Draw per-joint errors and errors over time to this PNG."),
) -> None:
    """Compare a body motion with ground truth: MPJPE, PA-MPJPE, PVE, global error, acceleration, per joint.
    With two folders of people: identities matched, errors per person, identity switches."""
    import json

    from mocap.eval.evaluate import evaluate_files
    from mocap.io.atomic import write_text

    if result.is_dir() and gt.is_dir():
        _eval_people(result, gt, json_out)
        return

    m = evaluate_files(result, gt, offset=offset, body=body, gt_body=gt_body, gender=gender, up=up)

    def mm(v):
        return "-" if v is None else f"{v:.1f}"

    table = Table(title=f"{result.name} vs {gt.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, v, unit in (("MPJPE (pelvis-aligned)", m.mpjpe, "mm"), ("PA-MPJPE", m.pa_mpjpe, "mm"),
                           ("PVE", m.pve, "mm"), ("global MPJPE", m.global_mpjpe, "mm"),
                           ("acceleration error", m.accel_error, "mm/frame^2")):
        table.add_row(label, f"{mm(v)} {unit}")
    table.add_row("frames evaluated", f"{len(m.frames)} ({100 * m.frames_evaluated:.0f} %)")
    console.print(table)
    joints = Table(title="per-joint MPJPE (mm)")
    for col in ("joint", "mm", "joint ", "mm "):
        joints.add_column(col, justify="right" if col.startswith("mm") else "left")
    items = list(m.per_joint.items())
    half = (len(items) + 1) // 2
    for (n1, v1), right in zip(items[:half], items[half:] + [("", None)]):
        joints.add_row(n1, mm(v1), right[0], mm(right[1]) if right[0] else "")
    console.print(joints)
    for note in m.notes:
        console.print(styled("note", "yellow", note))
    if json_out is not None:
        write_text(json_out, json.dumps(m.summary(), indent=2) + "\n")
        console.print(f"wrote {json_out}")
    if plot is not None:
        from mocap.eval.plot import plot_metrics

        plot_metrics(m, plot, title=f"{result.name} vs {gt.name}")
        console.print(f"wrote {plot}")


def _eval_people(result: Path, gt: Path, json_out: Optional[Path]) -> None:
    import json

    from mocap.eval.people import evaluate_people
    from mocap.io.atomic import write_text

    m = evaluate_people(result, gt)
    table = Table(title=f"people of {result} vs {gt}")
    for col in ("true person", "fitted person", "MPJPE mm", "PA-MPJPE mm", "global MPJPE mm", "frames", "id switches"):
        table.add_column(col, justify="left" if "person" in col else "right")
    for t, f in m.pairs.items():
        p = m.metrics[t]
        table.add_row(t, f, f"{p.mpjpe:.1f}", f"{p.pa_mpjpe:.1f}", "-" if p.global_mpjpe is None else f"{p.global_mpjpe:.1f}",
                      f"{len(p.frames)} ({100 * p.frames_evaluated:.0f} %)", str(m.switches[t]))
    console.print(table)
    console.print(f"identity switches: {sum(m.switches.values())}")
    for t in m.unmatched_truth:
        console.print(f"[yellow]true person {t}: no fitted person matches (missed)[/]")
    for f in m.unmatched_fit:
        console.print(f"[yellow]fitted person {f}: matches no true person (a false track)[/]")
    if json_out is not None:
        write_text(json_out, json.dumps(m.summary(), indent=2) + "\n")
        console.print(f"wrote {json_out}")
