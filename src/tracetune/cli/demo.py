"""``tracetune demo``: the whole recipe on built-in demo traces and a built-in student, offline, on CPU."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("runs/demo"), "--out", help="Folder for the demo traces and the run."),
        seed: int = typer.Option(0, "--seed", help="Seed for the traces, the student and training."),
        fresh: bool = typer.Option(False, "--fresh", help="Delete an earlier demo in --out first."),
        student: str = typer.Option("tiny", "--student", help="tiny (random, ~2 min) or smollm2 (SmolLM2-135M-Instruct, learns tool calls, ~40 min on 2 cores)."),
        unsandboxed: bool = typer.Option(False, "--unsandboxed", help="Run the student's live-loop commands as plain processes on this machine, without isolation (default: bubblewrap where it works, else no shell for the student)."),
    ) -> None:
        """Generate teacher sessions, build the student, run the full pipeline, show base vs tuned."""
        from tracetune.demo.pipeline import print_summary, run_demo
        from tracetune.demo.profiles import PROFILES
        from tracetune.errors import TracetuneError

        if student not in PROFILES:
            raise TracetuneError(f"unknown demo student {student!r}", hint="use --student " + " or --student ".join(PROFILES))
        console = Console()
        result = run_demo(out, seed=seed, fresh=fresh, console=console, student=student, unsandboxed=unsandboxed)
        print_summary(result, console)
