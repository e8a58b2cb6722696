"""``tracetune eval``: base vs tuned on held-out sessions (and optionally benchmarks and the live loop)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from tracetune.cli.defaults import DefaultsInHelp
from tracetune.errors import TracetuneError

HEADLINE = ("parse_rate", "valid_call", "action_match", "tool_match", "args_similarity", "path_match", "reply_similarity")


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to ``app``."""
    @app.command("eval", cls=DefaultsInHelp)
    def eval_command(
        prepared: Optional[Path] = typer.Option(None, "--prepared", help="Output folder of `tracetune prepare` (reads eval_episodes.jsonl)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Folder for results.json and report.html (with --run: default RUN/evals/TIME)."),
        run: Optional[Path] = typer.Option(None, "--run", help="A finished `tracetune run` folder: score its base and selected tuned model (with --traces: on those sessions, all held out)."),
        traces: list[str] = typer.Option([], "--traces", help="With --run: session files or folders to score on, prepared with the run's settings (repeatable)."),
        base: Optional[str] = typer.Option(None, "--base", help="Base model folder or hub id (default: the adapter's base)."),
        adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter folder of the tuned model."),
        config: Optional[Path] = typer.Option(None, "--config", help="Run config (TOML); its eval section is used."),
        sets: list[str] = typer.Option([], "--set", help="Override an eval setting, e.g. --set eval.backend.kind=\"openai\"."),
        max_samples: Optional[int] = typer.Option(None, "--max-samples", help="Cap on sampled assistant turns ({eval.max_samples})."),
        max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Cap on generated tokens per sample ({eval.max_new_tokens})."),
        backend: Optional[str] = typer.Option(None, "--backend", help="transformers, openai or vllm."),
        device: Optional[str] = typer.Option(None, "--device", help="transformers: cpu, cuda or auto."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="openai: server root, e.g. http://127.0.0.1:8000/v1."),
        max_prompt_tokens: Optional[int] = typer.Option(None, "--max-prompt-tokens", help="Longest context (default: the max_length the data was prepared with); longer ones are windowed or skipped."),
        long_context: Optional[str] = typer.Option(None, "--long-context", help="Contexts over --max-prompt-tokens: window them like the training windows, or skip them ({eval.long_context})."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling and intervals."),
        harness: Optional[str] = typer.Option(None, "--harness", help="Run the live loop with 'builtin' (tracetune's loop) or 'pi' (the real pi CLI against the served model)."),
        verbose: bool = typer.Option(False, "--verbose", help="Show the libraries' progress bars and warnings (hidden by default)."),
    ) -> None:
        """Score the base and tuned student on the teacher's held-out next actions.

        Either a prepared folder (--prepared, --adapter, --out), or a finished run (--run RUN), optionally on
        sessions given now (--traces PATH...), read, redacted and rendered with the run's own settings.
        """
        if not verbose:
            from tracetune.util import quiet

            quiet.quiet_libraries()
        from tracetune.eval.stage import evaluate
        from tracetune.pipeline.config import load_config

        flags = {"eval.max_samples": max_samples, "eval.max_new_tokens": max_new_tokens, "eval.seed": seed,
                 "eval.max_prompt_tokens": max_prompt_tokens, "eval.long_context": long_context,
                 "eval.backend.kind": backend, "eval.backend.device": device, "eval.backend.base_url": base_url,
                 "eval.live.harness": harness}
        console, err = Console(), Console(stderr=True)
        if run is not None:
            overrides = list(sets) + [f"{k}={_toml(v)}" for k, v in flags.items() if v is not None]
            with _bar(err) as on_progress:
                result = _eval_run(run, traces, out, prepared, adapter, overrides, on_progress, err)
            _finish(console, err, result)
            return
        if traces:
            raise TracetuneError("--traces scores a finished run on new sessions", hint="pass --run RUN with it")
        if prepared is None or out is None:
            raise TracetuneError("pass --run RUN, or --prepared DIR and --out DIR",
                                 hint="--run scores a finished run; --prepared scores a prepared folder with --adapter")
        cfg = load_config(config, overrides=list(sets), **flags).eval
        base_model = base or _adapter_base(adapter)
        with _bar(err) as on_progress:
            result = evaluate(cfg, prepared, base_model, adapter, out, progress=on_progress,
                              log=lambda msg: err.print(f"[dim]{msg}[/]", highlight=False))
        _finish(console, err, result)


def _eval_run(run: Path, traces: list[str], out: Path | None, prepared: Path | None, adapter: Path | None,
              overrides: list[str], on_progress, err: Console):
    """A finished run's eval: on new traces (prepared with its settings), or again on its own eval split."""
    from tracetune.eval.stage import evaluate
    from tracetune.pipeline.eval_traces import evaluate_run, run_config, run_student
    from tracetune.sweep.selection import selected_adapter

    if prepared is not None or adapter is not None:
        raise TracetuneError("--run takes its data and adapter from the run", hint="drop --prepared / --adapter")
    log = lambda msg: err.print(f"[dim]{msg}[/]", highlight=False)  # noqa: E731
    if traces:
        return evaluate_run(run, traces, out, overrides=overrides, progress=on_progress, log=log)
    import time

    cfg = run_config(run, overrides)
    out = out or run / "evals" / time.strftime("%Y%m%d-%H%M%S")
    return evaluate(cfg.eval, run / "prepare", run_student(run, cfg), selected_adapter(run / "sweep"), out,
                    progress=on_progress, log=log)


@contextlib.contextmanager
def _bar(err: Console):
    """A progress bar per model (count, elapsed, ETA); yields the callback eval reports to."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(role: str, done: int, total: int) -> None:
            if role not in tasks:
                tasks[role] = progress.add_task(f"generating ({role})" if role in ("base", "tuned") else role, total=total)
            progress.update(tasks[role], completed=done, total=total)

        yield on_progress


def _finish(console: Console, err: Console, result) -> None:
    print_results(console, json.loads(result.results_path.read_text("utf-8")))
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"results: {result.results_path}\nreport:  {result.report_path}", highlight=False)


def _toml(value) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _adapter_base(adapter: Path | None) -> str:
    if adapter is None:
        raise TracetuneError("pass --base MODEL (and --adapter DIR to score a tuned model)")
    try:
        base = json.loads((adapter / "adapter_config.json").read_text("utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError):
        base = None
    if not base:
        raise TracetuneError(f"cannot tell the base model of {adapter}", hint="pass --base MODEL")
    return str(base)


def print_results(console: Console, results: dict) -> None:
    """Base vs tuned from ``results.json``: the headline table with intervals, the floor, per tool, live, benchmarks."""
    fidelity = results.get("fidelity") or {}
    models = fidelity.get("models") or {}
    sampling = fidelity.get("sampling", {})
    table = Table(title=f"next-action fidelity ({sampling.get('kept', 0)} samples, 95% intervals)")
    table.add_column("measure")
    for role in models:
        table.add_column(role, justify="right")
    if "tuned_minus_base" in fidelity:
        table.add_column("tuned − base", justify="right")
    for key in HEADLINE:
        row = [fidelity["metric_definitions"][key]["label"]]
        row += [_cell(models[r]["metrics"][key]) for r in models]
        if "tuned_minus_base" in fidelity:
            row.append(_cell(fidelity["tuned_minus_base"][key]))
        table.add_row(*row)
    console.print(table)
    floor = fidelity.get("floor") or {}
    if floor.get("tool"):
        console.print(f"majority-tool floor (always {floor['tool']!r}): {_cell(floor['tool_match'])}", highlight=False)
    per_tool = _per_tool_table(models)
    if per_tool is not None:
        console.print(per_tool)
    for role, live in (results.get("live") or {}).items():
        s = live.get("summary", {})
        console.print(f"live ({role}): success {s.get('successes', 0)}/{s.get('episodes', 0)}, "
                      f"valid calls {s.get('valid_call_rate', 0):.2f}, ended by itself {s.get('self_ended_rate', 0):.2f}", highlight=False)
    for bench in results.get("inspect") or []:
        detail = ", ".join(f"{k} {v:.3f}" for k, v in bench["metrics"].items()) or bench.get("reason") or ""
        console.print(f"{bench['benchmark']} ({bench['role']}): {bench['status']} {detail}", highlight=False)


def _per_tool_table(models: dict) -> Table | None:
    """Same tool, per teacher tool (and replies), for every model."""
    roles = list(models)
    if not roles:
        return None
    groups = list(models[roles[0]].get("per_tool", {}))
    if not groups:
        return None
    table = Table(title="per teacher action: parse rate / same tool")
    table.add_column("teacher")
    table.add_column("n", justify="right")
    for role in roles:
        table.add_column(role, justify="right")
    for group in groups:
        first = models[roles[0]]["per_tool"][group]
        row = [group, str(first["parse_rate"]["n"])]
        for role in roles:
            figures = models[role]["per_tool"].get(group, {})
            parse, tool = figures.get("parse_rate", {}), figures.get("tool_match", {})
            same = f"{tool['mean']:.2f}" if tool.get("mean") is not None else "–"
            row.append(f"{parse.get('mean', 0):.2f} / {same}")
        table.add_row(*row)
    return table


def _cell(est: dict) -> str:
    if est.get("mean") is None:
        return f"– (n={est.get('n', 0)})"
    return f"{est['mean']:.2f} [{est['low']:.2f}, {est['high']:.2f}] n={est['n']}"
