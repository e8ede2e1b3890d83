"""The `mocap` command line: parse, load, call a stage, save, report.

Heavy libraries (torch, cv2, mediapipe, bpy) are imported inside the commands that need them so that
`mocap --help` is instant. A `MocapError` becomes one line on stderr and exit code 2; `--debug` shows
the traceback instead. Each module registers its commands on `app`; `mocap --help`
lists them in the order of the workflow, `_base.WORKFLOW`.
"""

from mocap.cli._base import app
from mocap.cli import info, calibrate, detect, fit, export, viz, evaluate, batch, synth, demo, body  # noqa: E402,F401  (registers the commands)

__all__ = ["app", "main"]


def main() -> None:
    app()
