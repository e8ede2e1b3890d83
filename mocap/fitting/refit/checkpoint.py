"""Loading the released ReFit checkpoints (``checkpoint_best.pth.tar``, weights under the key ``model``).

Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers only. A training
checkpoint may also hold other objects (a config node, numpy scalars of a validation score); those globals
are mapped to an inert stand-in that records nothing and runs none of their code, so no arbitrary
unpickling ever happens.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from mocap.errors import InputDataError, MissingDependencyError

from .hrnet import HRNET_WIDTHS
from .model import Refit

__all__ = ["load_refit", "DOWNLOAD_HINT"]

DOWNLOAD_HINT = ("download a released ReFit model (checkpoint_best.pth.tar, e.g. from the 'Pretrained models' "
                 "links of https://github.com/yufu-wang/ReFit) and pass its path with --checkpoint")


_SMPL_LAYERS = ("smpl", "smpl_male", "smpl_female")


class _Inert(dict):
    """Stands in for any non-tensor object of a checkpoint; accepts and ignores every argument and state."""

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        pass


def _read(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        with torch.serialization.safe_globals([(_Inert, name) for name in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file fails in many ways; all mean the same to the user
        raise InputDataError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}); {DOWNLOAD_HINT}") from None


def _backbone_of(state: dict, path: Path) -> str:
    w = state.get("init_layer.weight")
    widths = {8 * width: name for name, width in HRNET_WIDTHS.items()}
    if w is None or w.ndim != 2 or w.shape[1] not in widths:
        raise InputDataError(f"{path}: not a ReFit checkpoint (no init_layer.weight of a known backbone); {DOWNLOAD_HINT}")
    return widths[w.shape[1]]


def load_refit(path: str | os.PathLike, backbone: str | None = None, body=None) -> Refit:
    """Build ReFit and load a released checkpoint (eval mode, CPU).

    Args:
        path: ``checkpoint_best.pth.tar`` (weights under ``model``) or a bare state dict file.
        backbone: ``"w48"`` or ``"w32"``; ``None`` reads it from the checkpoint.
        body: an SMPL-format body (spec for :func:`mocap.body.model.load_body` or a ``BodyModel``) whose
            skinning buffers replace the checkpoint's (which may then be absent); ``None`` keeps the
            checkpoint's. SPIN's extra-joint regressor (used only for the 49 output joints, not by the
            fitting) comes from the checkpoint when it has one.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingDependencyError(f"{path}: ReFit checkpoint not found; {DOWNLOAD_HINT}")
    ckpt = _read(path)
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise InputDataError(f"{path}: no state dict under the key 'model'; {DOWNLOAD_HINT}")
    found = _backbone_of(state, path)
    if backbone is not None and backbone != found:
        raise InputDataError(f"{path}: holds an HRNet-{found.upper()} model, not {backbone.upper()}; "
                             f"pass backbone={found!r} or the matching checkpoint")
    model = Refit(found)
    expected = model.state_dict()
    # The SMPL buffers may be absent when a body supplies them.
    missing = [k for k in expected if k not in state and not (body is not None and k.split(".")[0] in _SMPL_LAYERS)]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        bad = ", ".join((missing + wrong)[:3])
        raise InputDataError(f"{path}: does not match the ReFit layout ({len(missing)} entries missing, "
                             f"{len(wrong)} with other shapes, e.g. {bad}); {DOWNLOAD_HINT}")
    model.load_state_dict({k: state[k] for k in expected if k in state}, strict=False, assign=True)
    if body is not None:
        if not hasattr(body, "layer"):
            from mocap.body.model import load_body

            body = load_body(body)
        model.set_body(body)
    return model.eval()
