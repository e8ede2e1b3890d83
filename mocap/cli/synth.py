"""`mocap synth`: a session whose truth is known."""

from __future__ import annotations

from pathlib import Path

import typer

from mocap.cli._base import app, console, progress_bar



@app.command()
def synth(
    out: Path = typer.Argument(..., help="New session folder to write."),
    cameras: int = typer.Option(4, help="Cameras on the ring, 2-12."),
    frames: int = typer.Option(120, help="Frames of motion."),
    fps: float = typer.Option(60.0, help="Frame rate."),
    motion: str = typer.Option("walk", help="walk, squat, jumping_jacks, arm_raise, turn or mixed."),
    noise: float = typer.Option(3.0, help="Gaussian keypoint noise, px."),
    outliers: float = typer.Option(0.05, help="Share of keypoints made gross outliers (incl. left/right swaps)."),
    occlusion: float = typer.Option(0.1, help="Share of keypoints occluded (dropped or low confidence)."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same session."),
    body: str = typer.Option("open", help="Body model: open, smpl, or a path to SMPL files."),
    render: bool = typer.Option(False, "--render", help="Also render videos and ChArUco calibration footage."),
    board_frames: int = typer.Option(120, help="Frames of board footage per camera (with --render)."),
    people: int = typer.Option(1, "--people", help="People in the session, 1-4: their paths cross and they hide each other."),
) -> None:
    """Write a synthetic session whose truth is known: rig, motion, 2D keypoints (and footage with --render)."""
    import time

    from mocap.synth.session import SynthConfig, synthesize

    cfg = SynthConfig(cameras=cameras, frames=frames, fps=fps, motion=motion, noise=noise, outliers=outliers,
                      occlusion=occlusion, seed=seed, body=body, render=render, board_frames=board_frames,
                      people=people)
    start = time.perf_counter()
    bar, progress = progress_bar("rendering")
    with bar:
        result = synthesize(out, cfg, progress=progress if render else None)
    console.print(f"wrote {result.root}: {len(result.rig)} cameras, {frames} frames of {motion} "
                  f"{'' if people == 1 else f'({people} people) '}in {time.perf_counter() - start:.1f} s")
    for f in result.files:
        console.print(f"  {f.relative_to(result.root)}")
