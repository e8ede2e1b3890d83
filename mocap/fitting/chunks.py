"""Frame-independent work over a long take, a chunk of frames at a time (memory, not speed)."""

from __future__ import annotations

from typing import Callable

import numpy as np


def by_frames(fn: Callable[[slice], np.ndarray], frames: int, empty: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``fn(frames_slice)`` for ``chunk`` frames at a time, concatenated along the first axis; ``empty`` for 0
    frames. numpy arrays or torch tensors."""
    parts = [fn(slice(s, s + chunk)) for s in range(0, frames, chunk)] or [empty]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import torch

    return torch.cat(parts)
