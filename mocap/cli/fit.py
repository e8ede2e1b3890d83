"""`mocap shape` and `mocap run`: the subject's shape, then the body in every frame."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mocap.cli._base import app, console, progress_bar, styled



@app.command()
def shape(
    session: Path = typer.Argument(..., help="Session folder."),
    frames: str = typer.Option("0:60", "--frames", help="Frames START:STOP of the subject in A-pose or moving slowly."),
    output: Path = typer.Option(..., "-o", "--output", help="Subject file to write, e.g. subject.npz."),
    views: Optional[int] = typer.Option(None, "--views", help="Use the N best views."),
    person: Optional[int] = typer.Option(None, "--person", help="The person's id (`mocap run` lists them); default the main subject."),
) -> None:
    """Fit the subject's body shape (betas) to a short sequence, for `mocap run --shape`."""
    from mocap.fitting.run import shape_session

    bar, progress = progress_bar("fitting shape")
    with bar:
        res, out = shape_session(session, frames, output, views, progress=progress, person=person)
    console.print(f"betas {' '.join(f'{b:+.2f}' for b in res.betas.tolist())}")
    console.print(f"{len(res.frames)} frames, mean reprojection error {res.error_px:.2f} px; wrote {out}")


@app.command()
def run(
    session: Path = typer.Argument(..., help="Session folder (calibration.toml and output/keypoints2d.h5)."),
    views: Optional[int] = typer.Option(None, "--views", help="Use the N best views (most detections, widest spread)."),
    shape: Optional[Path] = typer.Option(None, "--shape", help="Subject shape from `mocap shape`; betas are then held (Shape ReFit)."),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="Pipeline preset name or YAML path (default: session.yaml's, else keypoints)."),
    combine: Optional[str] = typer.Option(None, "--combine", help="average: per-view updates merged by averaging; joint: one LM over all views."),
    debug: bool = typer.Option(False, "--debug", help="Also write per-iteration diagnostics to output/fit.h5."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="ReFit checkpoint_best.pth.tar (pipelines refit, refit+keypoints)."),
    person: Optional[int] = typer.Option(None, "--person", help="The main subject's id, written to output/smpl.npz (default: the person seen by the most views for the most frames)."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Fit frames START:STOP only (e.g. 100:200, 100:); "
                                         "written to output/smpl_frames_START-STOP.npz unless -o is given."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Sequence file to write (default output/smpl.npz)."),
) -> None:
    """Fit the body to every frame: writes output/smpl.npz (world frame, AMASS-style) with per-frame quality,
    and every person found to output/people/<id>/smpl.npz."""
    import time

    from mocap.fitting.run import run_people

    bar, progress = progress_bar("fitting")
    start = time.perf_counter()
    with bar:
        fits, out = run_people(session, views, shape, pipeline, combine, debug, progress, checkpoint=checkpoint,
                               frames=frames, output=output, person=person)
    seconds = time.perf_counter() - start
    for i, fit in enumerate(fits):
        _print_person(fit, main=i == 0, several=len(fits) > 1)
    F = len(fits[0].result.flags)
    console.print(f"{len(fits)} {'person' if len(fits) == 1 else 'people'} x {F} frames in {seconds:.1f} s "
                  f"({len(fits) * F / seconds:.1f} frames/s); wrote {out} (person {fits[0].person}) and "
                  f"{session / 'output' / 'people'}/<id>/{fits[0].path.name}")
    if frames is not None:
        from mocap.io.smpl_npz import load_sequence

        first = load_sequence(out).meta["first_frame"]
        console.print(f"its frame 0 is session frame {first}: evaluate it with `mocap eval {out} --offset {first} --gt ...`")


def _print_person(fit, main: bool, several: bool) -> None:
    import numpy as np

    from mocap.fitting.people import REASON_TEXT, reason_counts
    from mocap.fitting.sequence import FLAGS
    from mocap.fitting.swaps import swap_counts
    result = fit.result
    title = f"person {fit.person}{' (main subject)' if main and several else ''}: " if several else ""
    table = Table(title=f"{title}reprojection error per view (px, mean over frames)")
    for col in ("camera", "mean", "median", "frames used"):
        table.add_column(col)
    for v, cam in enumerate(result.cameras):
        e = result.error_px[:, v]
        table.add_row(cam, f"{np.nanmean(e):.2f}" if np.isfinite(e).any() else "-",
                      f"{np.nanmedian(e):.2f}" if np.isfinite(e).any() else "-", str(int(result.views_used[:, v].sum())))
    console.print(table)
    F = len(result.flags)
    for name, bit in FLAGS.items():
        n = int(((result.flags & bit) > 0).sum())
        if n:
            console.print(styled(f"{n} of {F} frames {name.replace('_', ' ')}", "yellow"))
    for cam, kinds in reason_counts(result.view_reasons, result.cameras).items():
        console.print(styled(f"{cam}: left out of " + "; ".join(f"{n} frames: {REASON_TEXT[k]}" for k, n in kinds.items()),
                             "yellow"))
    for cam, n in fit.guided.items():
        console.print(f"{cam}: {n} frames read again where the other views put the person (`mocap detect` "
                      "missed them there at first)")
    if result.swaps is not None:
        for cam, kinds in swap_counts(result.swaps, result.cameras).items():
            console.print(f"{cam}: left and right keypoints relabelled in {sum(kinds.values())} frames "
                          "(the detector swapped them)")
