"""The ``tracetune`` command: registers one module per command and nothing else.

Each module in ``COMMANDS`` exposes ``register(app)``; command modules import
heavy libraries (torch, transformers) only inside their functions, so
``tracetune --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from tracetune import __version__
from tracetune.errors import TracetuneError

COMMANDS = [
    # keep one line per command module (tracetune/cli/<name>.py)
    "inspect",
    "student",
    "prepare",
    "init",
    "run",
    "demo",
    "eval",
    "train",
    "sweep",
    "job_worker",
    "serve",
]

app = typer.Typer(
    name="tracetune",
    help="Teach a small open model to act like your coding agent, from its own session traces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"tracetune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Teach a small open model to act like your coding agent."""


for _name in COMMANDS:
    importlib.import_module(f"tracetune.cli.{_name}").register(app)


def main() -> None:
    """Entry point: user errors print a message and a hint, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except TracetuneError as exc:
        err = Console(stderr=True)
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"  [yellow]hint:[/] {exc.hint}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        if _usage_error(exc):
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise
    if isinstance(code, int) and code:
        # typer turns Ctrl-C into a return value of 130 when not in standalone mode
        if code == 130:
            Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(code)


def _usage_error(exc: Exception) -> bool:
    """Show a command-line usage error (a mistyped option, a missing argument) as click does, without a traceback.

    typer 0.2x vendors click as ``typer._click``; plain ``click`` exceptions are checked too.
    """
    import click

    errors: list[type] = [click.ClickException]
    aborts: list[type] = [click.exceptions.Abort]
    try:
        from typer._click import exceptions as vendored

        errors.append(vendored.ClickException)
        aborts += [getattr(vendored, "Abort")] if hasattr(vendored, "Abort") else []
    except ImportError:
        pass
    if isinstance(exc, tuple(aborts)):
        exc.exit_code = 1  # type: ignore[attr-defined]
        return True
    if isinstance(exc, tuple(errors)):
        exc.show()  # type: ignore[attr-defined]
        return True
    return False


if __name__ == "__main__":
    main()
