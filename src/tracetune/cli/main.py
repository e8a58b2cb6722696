"""The ``tracetune`` command: registers one module per command and nothing else.

Each module in ``COMMANDS`` exposes ``register(app)``; command modules import
heavy libraries (torch, transformers) only inside their functions, so
``tracetune --help`` stays fast.

Errors end in two short lines, never a traceback: ``error: what failed`` and
``hint: what to do``. A ``TracetuneError`` carries both; any other exception
is shown as its type and message on one line (with the run stage it ended,
when it came from one), with a hint for the common kinds (the Hub, files,
memory) and "run with --debug for the traceback". ``tracetune --debug ...``
(or ``TRACETUNE_DEBUG=1``) prints the traceback as well.
"""

from __future__ import annotations

import importlib
import re
import sys
import traceback

import typer
from rich.console import Console
from rich.markup import escape

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
    "dashboard",
]

app = typer.Typer(
    name="tracetune",
    help="Teach a small open model to act like your coding agent, from its own session traces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: Rich markup would swallow "[train]" and "[sweep]" in help texts, its table cuts
    # long option names at 80 columns, and typer 0.2x labels every flag <bool> there.
    rich_markup_mode=None,
)
_debug = False
DEBUG_HINT = "run with --debug for the traceback"


def _version(value: bool) -> None:
    if value:
        print(f"tracetune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", envvar="TRACETUNE_DEBUG",
                               help="Print the full traceback when a command fails."),
) -> None:
    """Teach a small open model to act like your coding agent."""
    global _debug
    _debug = debug


for _name in COMMANDS:
    importlib.import_module(f"tracetune.cli.{_name}").register(app)


def _short_warnings() -> None:
    """A former option name (``train.config.DeprecatedOption``) prints as one ``warning:`` line, not Python's form."""
    import warnings

    python_form = warnings.formatwarning

    def form(message, category, filename, lineno, line=None):
        if category.__name__ == "DeprecatedOption":
            return f"warning: {message}\n"
        return python_form(message, category, filename, lineno, line)

    warnings.formatwarning = form


def main() -> None:
    """Entry point: user errors print a message and a hint, never a traceback."""
    _short_warnings()
    try:
        code = app(standalone_mode=False)
    except TracetuneError as exc:
        _report(exc, exc.message, exc.hint)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        if _usage_error(exc):
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        stage = failed_stage(exc)
        what = f"stage '{stage}' failed: " if stage else ""
        _report(exc, f"{what}{type(exc).__name__}: {one_line(exc)}", "; ".join(filter(None, [hint_for(exc), DEBUG_HINT])))
        sys.exit(1)
    if isinstance(code, int) and code:
        # typer turns Ctrl-C into a return value of 130 when not in standalone mode
        if code == 130:
            Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(code)


def _report(exc: BaseException, message: str, hint: str | None) -> None:
    err = Console(stderr=True)
    if _debug:
        traceback.print_exception(exc)
    err.print(f"[bold red]error:[/] {escape(_clip(message))}", highlight=False, soft_wrap=True)
    if hint:
        err.print(f"  [yellow]hint:[/] {escape(hint)}", highlight=False, soft_wrap=True)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The exception's message on one line (whitespace collapsed), cut at ``limit`` characters.

    Where the Hub said why (``server_message``), that follows the message's first line instead of the rest
    (often a whole HTML page).
    """
    text = _flat(str(exc)) or "(no message)"
    server = _flat(str(getattr(exc, "server_message", None) or ""))
    if server:
        first = _flat(next((line for line in str(exc).splitlines() if line.strip()), ""))
        text = f"{first} (the Hub said: {server})" if server not in first else first
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(message: str, lines: int = 20, width: int = 500) -> str:
    """A designed multi-line message (a list of config problems) as is, but never a wall of text."""
    kept = [line if len(line) <= width else line[: width - 1] + "…" for line in message.splitlines()[:lines]]
    more = len(message.splitlines()) - lines
    return "\n".join(kept) + (f"\n  ... {more} more lines ({DEBUG_HINT})" if more > 0 else "")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def failed_stage(exc: BaseException) -> str | None:
    """The run stage the exception ended (the innermost ``run_stage`` it went through), if any."""
    name, tb = None, exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "run_stage" and frame.f_globals.get("__name__") == "tracetune.pipeline.runner":
            name = getattr(frame.f_locals.get("stage"), "name", None) or name
        tb = tb.tb_next
    return name


def hint_for(exc: BaseException) -> str | None:
    """What to check for the common kinds of unexpected failure."""
    kind = type(exc)
    module = kind.__module__ or ""
    if module.startswith(("huggingface_hub", "requests", "httpx", "urllib3")):
        return ("a Hugging Face Hub request failed: check the repo id, that your token (the [publish] token_env "
                "variable, HF_TOKEN) may read or write it, and the network")
    if kind.__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):
        return "out of memory: lower [train] per_device_train_batch_size or max_length, or use a smaller student"
    if isinstance(exc, PermissionError):
        return "check the permissions of the path named above"
    if isinstance(exc, OSError):
        return "check the path named above and the free disk space"
    return None


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
