"""``tracetune inspect PATH...``: what a set of session files holds, before any training."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tracetune.errors import TracetuneError
from tracetune.readers.discover import read_paths
from tracetune.readers.registry import ReadOptions
from tracetune.readers.summary import Figures, InspectSummary, local_session_files, summarise

SCALARS = [
    ("files", "files read"),
    ("sessions", "sessions"),
    ("families", "session families"),
    ("episodes", "episodes"),
    ("assistant_turns", "assistant turns"),
    ("trainable_turns", "trainable turns"),
    ("compactions", "compactions"),
    ("branch_points", "branch points"),
    ("images", "images (placeholders)"),
]
BREAKDOWNS = [
    ("untrainable", "untrainable turns by reason"),
    ("tool_calls", "tool calls by tool"),
    ("teacher_models", "assistant turns by teacher model"),
    ("warnings", "warnings by kind"),
    ("ignored", "entries skipped on purpose (not model-visible)"),
]


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to ``app``."""
    @app.command("inspect")
    def inspect(
        paths: list[str] = typer.Argument(..., help="Session files or directories (walked recursively), or hf://datasets/OWNER/NAME."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON instead of tables."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Trace format (default: detected per file)."),
        sidechains: str = typer.Option("train", "--sidechains", help="Claude Code subagent conversations: 'train' (default), 'context' (never targets) or 'drop'."),
    ) -> None:
        """Count sessions, episodes, assistant turns, tool calls and warnings in session files."""
        summary = _read(paths, fmt, ReadOptions(sidechains=sidechains))  # type: ignore[arg-type]
        if as_json:
            print(json.dumps(summary.to_json(), indent=2))
        else:
            _print(summary, Console())


def _read(paths: list[str], fmt: str | None, options: ReadOptions | None = None) -> InspectSummary:
    total = len(local_session_files(paths))
    err = Console(stderr=True)
    columns = (TextColumn("reading"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err, transient=True, disable=total < 2) as progress:
        task = progress.add_task("", total=total or None)
        result = read_paths(paths, fmt=fmt, options=options,
                            on_file=lambda p: progress.update(task, advance=1, description=p.name))
    if not result.sessions and not result.errors:
        raise TracetuneError(
            f"no session files under {', '.join(map(str, paths))}",
            hint="pass .jsonl session files or a directory holding them (e.g. ~/.pi/agent/sessions)",
        )
    return summarise(result)


def _columns(summary: InspectSummary) -> list[Figures]:
    return list(summary.by_agent) + ([summary.total] if len(summary.by_agent) > 1 else [])


def _print(summary: InspectSummary, console: Console) -> None:
    cols = _columns(summary)
    table = Table(title="sessions", title_justify="left")
    table.add_column("")
    for f in cols:
        table.add_column(f.agent, justify="right")
    for key, label in SCALARS:
        table.add_row(label, *(f"{getattr(f, key):,}" for f in cols))
    console.print(table)
    for key, label in BREAKDOWNS:
        names = list(dict.fromkeys(name for f in cols for name in getattr(f, key)))
        if not names:
            continue
        sub = Table(title=label, title_justify="left", min_width=len(label))
        sub.add_column("")
        for f in cols:
            sub.add_column(f.agent, justify="right")
        for name in names:
            sub.add_row(name, *(f"{getattr(f, key).get(name, 0):,}" for f in cols))
        console.print(sub)
    if summary.unreadable:
        bad = Table(title=f"unreadable files ({len(summary.unreadable)})", title_justify="left", min_width=30)
        bad.add_column("file")
        bad.add_column("why")
        for u in summary.unreadable:
            bad.add_row(u.path, u.message)
        console.print(bad)
