"""``tracetune sweep``: train a grid of variants, pick the winner by a rule fixed beforehand."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table


def _floats(value: Optional[str]) -> Optional[list[float]]:
    return [float(v) for v in value.split(",") if v.strip()] if value else None


def _ints(value: Optional[str]) -> Optional[list[int]]:
    return [int(v) for v in value.split(",") if v.strip()] if value else None


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` command to ``app``."""
    @app.command("sweep")
    def sweep_cmd(
        dataset: Path = typer.Argument(..., help="Output folder of `tracetune prepare` (holds dataset/)."),
        out: Path = typer.Option(..., "--out", help="Sweep folder: selection_rule.json, variants/, selection.json."),
        model: Optional[str] = typer.Option(None, "--model", help="Student model id or local folder."),
        config: Optional[Path] = typer.Option(None, "--config", help="TOML with [train] and [sweep] tables (flags override)."),
        learning_rate: Optional[str] = typer.Option(None, "--learning-rate", help="Learning rates, comma-separated (e.g. 1e-4,2e-4)."),
        lora_r: Optional[str] = typer.Option(None, "--lora-r", help="LoRA ranks, comma-separated (e.g. 8,16)."),
        max_length: Optional[str] = typer.Option(None, "--max-length", help="Sequence lengths, comma-separated."),
        metric: Optional[str] = typer.Option(None, "--metric", help="Selection metric (eval_loss)."),
        direction: Optional[str] = typer.Option(None, "--direction", help="min | max (min)."),
        max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps per variant (overrides num_train_epochs)."),
        report_to: Optional[str] = typer.Option(None, "--report-to", help="trackio (local) | none."),
        lr: Optional[str] = typer.Option(None, "--lr", hidden=True, help="Former name of --learning-rate."),
    ) -> None:
        """Variants run one after another; a failing one is recorded and the others go on. Rerun to resume."""
        from tracetune.cli.train import former_flag
        from tracetune.sweep.config import load_sweep_config
        from tracetune.sweep.runner import run_sweep
        from tracetune.train.config import load_train_config

        base = load_train_config(config, model=model, max_steps=max_steps, report_to=report_to)
        rates = _floats(former_flag(learning_rate, lr, "--learning-rate", "--lr"))
        sweep = load_sweep_config(config, learning_rate=rates, lora_r=_ints(lora_r), max_length=_ints(max_length),
                                  metric=metric, direction=direction)
        err = Console(stderr=True)

        def rule_written(path: Path, sha: str) -> None:
            err.print(f"selection rule fixed in {path} (sha256 {sha[:12]}...)", highlight=False)

        def variant_done(outcome) -> None:
            status = "[green]ok[/]" if outcome.status == "ok" else f"[red]failed[/] {outcome.error}"
            err.print(f"variant {outcome.name}: {status}", highlight=False)

        result = run_sweep(sweep, base, dataset, out, on_rule_written=rule_written, on_variant=variant_done)
        Console().print(outcome_table(result, sweep.rule.metric))
        Console().print(f"winner [bold]{result.winner}[/]: {result.winner_dir / 'adapter'}", highlight=False)


def outcome_table(result, metric: str) -> Table:
    """One row per variant: its learning rate, rank, max length, ``metric`` score and status, the winner marked."""
    table = Table(title=f"sweep ({metric}, rule sha256 {result.rule_sha256[:12]}...)")
    for col in ("variant", "learning rate", "rank", "max length", metric, "status"):
        table.add_column(col, justify="left" if col in ("variant", "status") else "right")
    for o in result.outcomes:
        score = o.metrics.get(metric)
        mark = " [bold green]<- winner[/]" if o.name == result.winner else ""
        table.add_row(
            o.name, f"{o.params.get('learning_rate', o.params.get('lr', 0)):g}", str(o.params["lora_r"]), str(o.params["max_length"]),
            f"{score:.4f}" if isinstance(score, (int, float)) else "-", (o.status if o.status == "ok" else f"failed: {o.error}") + mark,
        )
    return table
