"""``tracetune prepare``: sessions in, a training-ready dataset folder out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tracetune.cli.defaults import DefaultsInHelp

if TYPE_CHECKING:
    from tracetune.prepare.summary import PrepareSummary


def register(app: typer.Typer) -> None:
    """Add the ``prepare`` command to ``app``."""
    @app.command("prepare", cls=DefaultsInHelp)
    def prepare_cmd(
        traces: list[str] = typer.Argument(..., help="Session files or folders (read-only), or hf://datasets/OWNER/NAME."),
        student: str = typer.Option(..., "--student", help="Model id or local folder (its tokenizer and chat template)."),
        out: Path = typer.Option(..., "--out", help="Folder to write the prepared dataset into."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Force a trace format (default: detect per file)."),
        sidechains: str = typer.Option("train", "--sidechains", help="Claude Code subagent conversations: 'train' (default), 'context' (never targets) or 'drop'."),
        chat_template: Optional[str] = typer.Option(None, "--chat-template", help="Template override: 'tool-aware', a shipped name ('chatml_tools', 'generic_tools') or a .jinja file."),
        template: Optional[str] = typer.Option(None, "--template", help="'tool-aware': the shipped tool-calling template that fits the student (same as --chat-template tool-aware)."),
        system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="System prompt text, or a file holding it."),
        max_length: Optional[int] = typer.Option(None, "--max-length", help="Longest example in tokens ({prepare.max_length})."),
        strategy: Optional[str] = typer.Option(None, "--strategy", help="'trajectory' (windowed) or 'per-turn' ({prepare.strategy})."),
        per_turn_history: Optional[int] = typer.Option(None, "--per-turn-history", help="per-turn: history messages kept (0: all; {prepare.per_turn_history})."),
        per_turn_fit: bool = typer.Option(False, "--per-turn-fit", help="per-turn: cut old history until it fits instead of dropping."),
        eval_fraction: Optional[float] = typer.Option(None, "--eval-fraction", help="Share of sessions held out, whole session families ({prepare.eval_fraction})."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the split ({prepare.seed})."),
        clip: Optional[int] = typer.Option(None, "--clip-tool-results", help="Clip tool results to this many characters (0: never; {prepare.clip_tool_result_chars})."),
        reasoning: bool = typer.Option(False, "--reasoning/--no-reasoning", help="Render and train on the teacher's reasoning."),
        teacher: list[str] = typer.Option([], "--teacher", help="Only supervise turns of this teacher model (repeatable, 'prov/*')."),
        keep_failed: bool = typer.Option(False, "--keep-failed-turns", help="Keep aborted/errored turns as context."),
        tools_file: Optional[Path] = typer.Option(None, "--tools-file", help="JSON tool definitions to add or replace."),
        long_turns: Optional[str] = typer.Option(None, "--long-turns", help="A turn longer than a window: 'drop' it, or 'truncate' (supervise its first part; {prepare.long_turns})."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes scanning and rendering (default: the machine's cores); the output is the same for any number."),
    ) -> None:
        """Redact, split by session family, render with the student's template, mask, window, write."""
        from pydantic import ValidationError

        from tracetune.errors import TracetuneError
        from tracetune.prepare.config import PrepareConfig
        from tracetune.prepare.notes import prepare_notes
        from tracetune.prepare.stage import prepare
        from tracetune.prepare.workers import default_workers
        from tracetune.readers.registry import ReadOptions

        from tracetune.pipeline.student import refuse_builtin_name

        refuse_builtin_name(student, "--student")
        if template and chat_template and template != chat_template:
            raise TracetuneError("--template and --chat-template name different templates", hint="pass one of them")
        try:
            given = {"max_length": max_length, "strategy": strategy, "per_turn_history": per_turn_history,
                     "eval_fraction": eval_fraction, "seed": seed, "long_turns": long_turns, "clip_tool_result_chars": clip}
            chosen = {k: v for k, v in given.items() if v is not None}  # the rest: PrepareConfig's defaults
            if clip == 0:
                chosen["clip_tool_result_chars"] = None
            config = PrepareConfig(
                student=student,
                chat_template=template or chat_template,
                system_prompt=system_prompt,
                per_turn_fit=per_turn_fit,
                include_reasoning=reasoning,
                teacher_models=teacher,
                drop_failed_turns=not keep_failed,
                tools_file=str(tools_file) if tools_file else None,
                **chosen,
            )
        except ValidationError as exc:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise TracetuneError(f"invalid prepare options: {bad}", hint="see tracetune prepare --help") from None
        options = ReadOptions(sidechains=sidechains)  # type: ignore[arg-type]
        console = Console(stderr=True)
        with _progress(console) as bar:
            task = bar.add_task("reading sessions", total=None)
            result = prepare(config, traces, out, fmt=fmt, read_options=options, workers=workers or default_workers(),
                             progress=lambda step, done, total: bar.update(task, description=STEPS.get(step, step),
                                                                           completed=done, total=total))
        if result.template_audit:
            Console().print(audit_line(result.template_audit.to_dict()), highlight=False)
            for warning in result.template_audit.warnings:
                console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        Console().print(summary_table(result.stats))
        Console().print(turns_line(result.stats), highlight=False)
        for note in prepare_notes(result.stats):
            console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False)
        if not result.stats.turns.supervised:
            conv = result.stats.conversion
            console.print(
                f"[yellow]warning:[/] no turn was supervised ({conv.targets_in} targets read, "
                f"{conv.filtered_teacher} left as context by --teacher); the dataset is empty",
                highlight=False,
            )
        if result.stats.split.warning:
            console.print(f"[yellow]warning:[/] {result.stats.split.warning}", highlight=False)
        Console().print(f"dataset written to [bold]{out}[/] (open {out / 'report.html'})", highlight=False)


STEPS = {"scan": "scanning for secrets", "redact": "redacting", "render": "rendering sessions"}


def _progress(console: Console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)


def summary_table(stats: PrepareSummary) -> Table:
    """The figures a user checks first, from ``prepare_stats.json``."""
    table = Table(title=f"prepare ({stats.strategy}, max length {stats.max_length})", show_header=True)
    table.add_column("")
    table.add_column("train", justify="right")
    table.add_column("eval", justify="right")
    train, ev = stats.split_examples("train"), stats.split_examples("eval")
    table.add_row("sessions", str(stats.split.train_sessions), str(stats.split.eval_sessions))
    for label, key in (("examples", "examples"), ("turns supervised", "turns_supervised"), ("tokens", "tokens"), ("supervised tokens", "supervised_tokens"), ("tokens / supervised", "tokens_per_supervised_token")):
        table.add_row(label, _fmt(getattr(train, key)), _fmt(getattr(ev, key)))
    return table


def turns_line(stats: PrepareSummary) -> str:
    """Kept and dropped trainable turns, in one line."""
    turns = stats.turns
    dropped = ", ".join(f"{k} {v}" for k, v in turns.dropped_by_reason.items()) or "none"
    return (
        f"{turns.supervised}/{turns.trainable} trainable turns kept ({100 * (turns.kept_fraction or 0):.1f}%); "
        f"dropped: {dropped}; windowed episodes: {stats.windowed_episodes}; fallback turns: {turns.fallback_turns}"
    )


def audit_line(audit: dict) -> str:
    """The chat template audit in one line."""
    checks = {"tools": "tools_rendered", "call name": "call_name_survives", "arguments": "call_arguments_survive",
              "results": "tool_result_survives", "prefix-stable": "prefix_stable", "tokens": "tokens_stable"}
    marks = " ".join(f"{label} {'ok' if audit[key] else 'LOST' if key not in ('prefix_stable', 'tokens_stable') else 'NO'}"
                     for label, key in checks.items())
    return f"chat template {audit['template']}: {audit['verdict']} ({marks}; generation markers: {'yes' if audit['generation_markers'] else 'no'})"


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)
