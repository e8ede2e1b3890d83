"""`mocap body`: the bundled body as SMPL files, and a labelled picture of a template."""

from __future__ import annotations

from pathlib import Path

import typer

from mocap.cli._base import Group, app, console



body_app = typer.Typer(cls=Group, no_args_is_help=True, help="Body models: export the bundled body, picture a template.")
app.add_typer(body_app, name="body")


@body_app.command("export")
def body_export(
    spec: str = typer.Argument("open", help="'open' (the bundled body) or a path to an SMPL-format .npz/.pkl."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder to write SMPL_NEUTRAL.pkl into."),
) -> None:
    """Write a body as an SMPL-style pickle (plain numpy arrays) for tools that only read SMPL files."""
    from mocap.body.export import export_smpl_pickle

    path = export_smpl_pickle(out, spec)
    console.print(f"wrote {path}")


@body_app.command("show")
def body_show(
    spec: str = typer.Argument("open", help="'open', 'smpl' ($MOCAP_SMPL_DIR) or a path to SMPL files."),
    out: Path = typer.Option(Path("body.png"), "--out", "-o", help="PNG to write."),
    keypoints: str = typer.Option("blazepose33", "--keypoints", help="Keypoint format: blazepose33, coco17, body25."),
    gender: str = typer.Option("neutral", "--gender", help="neutral, male or female."),
) -> None:
    """Picture the template (front and side) with its joints and detector keypoints labelled."""
    from mocap.body.model import load_body
    from mocap.viz.body_figure import body_figure

    path = body_figure(load_body(spec, gender), out, keypoints)
    console.print(f"wrote {path}")
