"""``tracetune demo``: the whole recipe on built-in demo traces and the tiny student, offline, on CPU."""

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
    ) -> None:
        """Generate teacher sessions, build the tiny student, run the full pipeline, show the results."""
        from tracetune.demo.pipeline import print_summary, run_demo

        console = Console()
        result = run_demo(out, seed=seed, fresh=fresh, console=console)
        print_summary(result, console)
