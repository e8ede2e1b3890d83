"""What every `mocap` command shares: the app, its error handling, consoles, progress and small helpers.

Heavy libraries (torch, cv2, mediapipe, bpy) are imported inside the commands that need them so that
`mocap --help` is instant. A `MocapError` becomes one line on stderr and exit code 2; `--debug` shows
the traceback instead. Both consoles print text literally (no rich markup): file and camera names such as
``[cam_0]`` or ``/tmp/[bold]x`` must reach the user as they are; colour comes only from `styled`.
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.text import Text

from mocap import __version__
from mocap.errors import MocapError, MocapWarning

console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)
#: Seconds between plain progress lines when stderr is not a terminal (a log file, a batch job).
PROGRESS_EVERY = 5.0


def styled(label: str, style: str, text: str = "") -> Text:
    """``label`` in ``style``, then ``text`` exactly as given."""
    return Text.assemble((label, style), (f" {text}" if text else ""))


def warn(message: str) -> None:
    """One ``warning:`` line on stderr."""
    err_console.print(styled("warning:", "yellow", message), soft_wrap=True)


#: The order `mocap --help` lists the commands in: the order of the workflow. Commands not named here
#: follow in the order they were registered.
WORKFLOW = ("info", "init", "calibrate", "detect", "shape", "run", "export", "viz", "report", "eval", "batch",
            "synth", "demo", "body")


class Group(typer.core.TyperGroup):
    """Turns user mistakes (MocapError) into one line and exit code 2, for every sub-command; the root lists
    its commands and sub-command groups together in workflow order (typer puts groups after commands)."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)
        if ctx.parent is not None:  # a sub-command group keeps its commands' registration order
            return names
        rank = {name: i for i, name in enumerate(WORKFLOW)}
        return sorted(names, key=lambda n: rank.get(n, len(WORKFLOW)))  # stable: the rest keep their order

    def invoke(self, ctx: typer.Context):
        try:
            with warnings.catch_warnings():
                shown = warnings.showwarning

                def show(message, category, *args, **kwargs):
                    if issubclass(category, MocapWarning):
                        warn(str(message))
                    else:
                        shown(message, category, *args, **kwargs)

                warnings.showwarning = show
                warnings.simplefilter("always", MocapWarning)
                return super().invoke(ctx)
        except MocapError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err_console.print(styled("error:", "bold red", " ".join(str(e).split("\n"))), soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=Group, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=True,
                  help="Multi-view markerless motion capture: calibrated cameras in, SMPL motion out.")


def _version(value: bool) -> None:
    if value:
        console.print(f"mocap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    ctx.obj = {"debug": debug}


def yes_no(flag: bool) -> Text:
    return Text("yes", "green") if flag else Text("no", "red")


class DefaultCommandGroup(Group):
    """A group whose first argument may be a session instead of a sub-command: `mocap detect SESSION` runs
    the group's ``default_command``."""

    default_command = "run"

    def __init__(self, **kwargs) -> None:
        super().__init__(**{**kwargs, "subcommand_metavar": "SESSION [OPTIONS] | COMMAND [ARGS]..."})

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: typer.Context, formatter) -> None:
        ctx.meta[_HELP] = True  # get_params adds the default command's options to this help page only
        super().format_help(ctx, formatter)

    def get_params(self, ctx: typer.Context) -> list:
        params = super().get_params(ctx)
        if not ctx.meta.get(_HELP):
            return params
        panel = f"Options of {ctx.info_name} SESSION (= {ctx.info_name} {self.default_command})"
        shown = []
        for param in self.commands[self.default_command].params:  # copies: the command keeps its own panels
            if isinstance(param, typer.core.TyperOption):
                param = copy.copy(param)
                param.rich_help_panel = panel
                shown.append(param)
        return params + shown


_HELP = "mocap.formatting_help"


class DefaultSessionGroup(DefaultCommandGroup):
    default_command = "session"


def split_names(values: Optional[list[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [n for v in values for n in v.split(",") if n]


class ProgressLines:
    """Progress of one or more named tasks on stderr: rich bars on a terminal; elsewhere one plain line every
    `PROGRESS_EVERY` seconds (frames done, rate, time left) and a last line when the work ends.

    ``task(name)`` gives a ``progress(done, total)`` callback for one task; calling the object itself updates
    the task named by ``description``.
    """

    def __init__(self, description: str, unit: str = "frames") -> None:
        self.description, self.unit = description, unit
        self.tty = err_console.is_terminal
        self._done: dict[str, tuple[int, int | None]] = {}
        self._bar = self._ids = None
        self._start = self._last = time.monotonic()

    def __enter__(self) -> "ProgressLines":
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=err_console, transient=True)
            self._ids = {}
            self._bar.__enter__()
        self._start = self._last = time.monotonic()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, *exc)
        elif self._done and exc_type is None:
            self._line(final=True)

    def __call__(self, done: int, total: int | None) -> None:
        self.update(self.description, done, total)

    def task(self, name: str) -> Callable[[int, int | None], None]:
        return lambda done, total: self.update(name, done, total)

    def update(self, name: str, done: int, total: int | None) -> None:
        self._done[name] = (done, total)
        if self._bar is not None:
            if name not in self._ids:
                self._ids[name] = self._bar.add_task(name, total=total)
            self._bar.update(self._ids[name], completed=done, total=total)
        elif time.monotonic() - self._last >= PROGRESS_EVERY:
            self._line()

    def _line(self, final: bool = False) -> None:
        now = time.monotonic()
        self._last = now
        done = sum(d for d, _ in self._done.values())
        totals = [t for _, t in self._done.values()]
        total = sum(totals) if None not in totals else None
        elapsed = max(now - self._start, 1e-9)
        parts = [f"{done}/{total} {self.unit}" if total else f"{done} {self.unit}"]
        if final:
            parts.append(f"done in {elapsed:.0f} s")
        else:
            if total:
                parts[0] += f" ({100 * done / total:.0f}%)"
            parts.append(f"{done / elapsed:.1f}/s")
            if total and done:
                parts.append(f"ETA {(total - done) * elapsed / done:.0f} s")
        names = "" if list(self._done) == [self.description] else \
            " (" + ", ".join(f"{n} {d}/{t or '?'}" for n, (d, t) in self._done.items()) + ")"
        err_console.print(f"{self.description}: {', '.join(parts)}{names}", soft_wrap=True)


def progress_bar(description: str, unit: str = "frames") -> tuple[ProgressLines, Callable[[int, int | None], None]]:
    """The shared progress display (`ProgressLines`) and the ``progress(done, total)`` callback that drives it."""
    lines = ProgressLines(description, unit)
    return lines, lines


def frame_ranges(mask) -> str:
    """``[F]`` bool -> ``"3-5, 9"`` (at most five ranges shown); imported when used, numpy with it."""
    from mocap.viz.quality import frame_ranges as ranges

    return ranges(mask)

