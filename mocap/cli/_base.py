"""What every `mocap` command shares: the app, its error handling, consoles and small helpers.

Heavy libraries (torch, cv2, mediapipe, bpy) are imported inside the commands that need them so that
`mocap --help` is instant. A `MocapError` becomes one line on stderr and exit code 2; `--debug` shows
the traceback instead.
"""

from __future__ import annotations

import copy
from typing import Optional

import typer
from rich.console import Console

from mocap import __version__
from mocap.errors import MocapError

console = Console()
err_console = Console(stderr=True)


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
            return super().invoke(ctx)
        except MocapError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err_console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
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


def yes_no(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


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


def progress_bar(description: str):
    """A rich progress bar on stderr and the ``progress(done, total)`` callback that drives it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console, transient=True)
    task = bar.add_task(description, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def frame_ranges(mask) -> str:
    """``[F]`` bool -> ``"3-5, 9"`` (at most five ranges shown); imported when used, numpy with it."""
    from mocap.viz.quality import frame_ranges as ranges

    return ranges(mask)

