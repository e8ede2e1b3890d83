"""Rendered footage of a synthetic session: the shaded body per camera, and ChArUco board footage.

MP4 (``mp4v``) through ``cv2.VideoWriter``, one file per camera, written atomically. A light Gaussian blur
(sigma 0.6 px) and sensor noise (sigma 2 grey levels) keep the pictures from being unnaturally crisp.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mocap.errors import InputDataError

Progress = Callable[[int, int], None]


@contextmanager
def video_writer(path: Path, fps: float, size: tuple[int, int]) -> Iterator[Callable[[np.ndarray], None]]:
    """Yield ``write(rgb)`` for ``(H, W, 3)`` uint8 RGB frames; the file appears under ``path`` on success."""
    import cv2

    from mocap.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(int(s) for s in size))
        if not writer.isOpened():
            raise InputDataError(f"{path}: OpenCV cannot write an mp4v video here")
        try:
            yield lambda rgb: writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        finally:
            writer.release()


def _camera_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    noise = rng.normal(0.0, 2.0, img.shape[:2] + (1,)).astype(np.float32)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def render_videos(folder: Path, rig, motions, body, rng: np.random.Generator,
                  progress: Progress | None = None, chunk: int = 64) -> list[Path]:
    """``folder/<camera>.mp4`` for every camera of ``rig``: ``motions`` (one Motion or several people's) of
    ``body`` over the backdrop; several bodies are drawn as one mesh, so they hide each other correctly."""
    import torch

    from mocap.synth.render import backdrop, part_colours, pixel_rays, shade_body

    motions = [motions] if not isinstance(motions, (list, tuple)) else list(motions)
    F = len(motions[0].transl)
    colours = np.tile(part_colours(body.layer.lbs_weights.detach().cpu().numpy()), (len(motions), 1))
    faces = np.concatenate([body.faces + k * body.num_vertices for k in range(len(motions))])
    with torch.no_grad():
        verts = np.concatenate([np.concatenate([
            body(m.global_orient[s:s + chunk], m.body_pose[s:s + chunk],
                 torch.as_tensor(m.betas[None], dtype=body.dtype), m.transl[s:s + chunk]).vertices.double().numpy()
            for s in range(0, F, chunk)]) for m in motions], 1)
    total, done, files = F * len(rig), 0, []
    for cam in rig:
        bg = backdrop(cam, pixel_rays(cam))
        path = folder / f"{cam.name}.mp4"
        with video_writer(path, motions[0].fps, cam.image_size) as write:
            for f in range(F):
                img, _ = shade_body(cam, verts[f], faces, colours, bg)
                write(_camera_noise(img, rng))
                done += 1
                if progress:
                    progress(done, total)
        files.append(path)
    return files


def render_board_footage(folder: Path, rig, frames: int, fps: float, rng: np.random.Generator,
                         progress: Progress | None = None) -> list[Path]:
    """``folder/<camera>.mp4``: the synthetic ChArUco board waved through the volume, seen by every camera
    at the same instants; its true poses go to ``folder/board_poses.npz`` (R (F, 3, 3), t (F, 3), board to world)."""
    from mocap.io.atomic import atomic_path
    from mocap.synth.board import SYNTH_BOARD, BoardTexture, board_path, draw_board
    from mocap.synth.render import backdrop, pixel_rays

    R_b, t_b = board_path(frames, rng)
    texture = BoardTexture.from_config(SYNTH_BOARD)
    total, done, files = frames * len(rig), 0, []
    for cam in rig:
        rays = pixel_rays(cam)
        bg = backdrop(cam, rays)
        path = folder / f"{cam.name}.mp4"
        with video_writer(path, fps, cam.image_size) as write:
            for f in range(frames):
                img = draw_board(bg.copy(), cam, rays, texture, R_b[f], t_b[f])
                write(_camera_noise(img, rng))
                done += 1
                if progress:
                    progress(done, total)
        files.append(path)
    poses = folder / "board_poses.npz"
    with atomic_path(poses) as tmp:
        np.savez(tmp, R=R_b, t=t_b, rows=SYNTH_BOARD.rows, cols=SYNTH_BOARD.cols, square=SYNTH_BOARD.square,
                 marker=SYNTH_BOARD.marker, dict=np.str_(SYNTH_BOARD.dict))
    files.append(poses)
    return files
