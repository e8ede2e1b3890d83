"""One exception family for the whole project.

The CLI turns any `MocapError` into one line (`error: <message>`) and exit code 2; anything else is a
bug and keeps its traceback. Messages name the file and the problem, and say what to do when we know.
"""

from __future__ import annotations

from contextlib import contextmanager


class MocapError(Exception):
    """A problem the user can fix: bad input, bad config, missing file."""


class ConfigError(MocapError):
    """Bad YAML, unknown key, contradictory options."""


class InputDataError(MocapError):
    """Missing or unreadable input file, wrong shapes, inconsistent views."""


class CalibrationError(MocapError):
    """Calibration could not be computed or read."""


class FittingError(MocapError):
    """The body could not be fitted (too few views, no detections...)."""


class MissingDependencyError(MocapError):
    """An optional extra (bpy, anny) or licensed file (SMPL, ReFit checkpoint) is absent."""


class MocapWarning(UserWarning):
    """A doubtful input that mocap works around (a rescaled calibration...); the CLI prints it as one line."""


def listing(values, cap: int = 8) -> str:
    """``a, b, c`` for a message, at most ``cap`` values shown: a huge input must not make a huge message."""
    values = [str(v) for v in values]
    shown = ", ".join(v if len(v) <= 60 else v[:57] + "..." for v in values[:cap])
    return shown + (f", ... ({len(values)} in all)" if len(values) > cap else "")


@contextmanager
def about(path):
    """Errors raised inside that do not name ``path`` get it in front: stages that work on arrays (fitting,
    export) do not know which file the arrays came from, the caller does."""
    try:
        yield
    except MocapError as e:
        if str(path) in str(e):
            raise
        raise type(e)(f"{path}: {e}") from None
