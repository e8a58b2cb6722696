"""``tracetune train``: one LoRA SFT run on a prepared dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from tracetune.cli.defaults import DefaultsInHelp


def _csv(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def former_flag(value, former, name: str, former_name: str):
    """The value of a flag, or of its former (hidden) name with a deprecation line on stderr."""
    if former is None:
        return value
    if value is not None:
        from tracetune.errors import TracetuneError

        raise TracetuneError(f"{former_name} is the former name of {name}: give only {name}")
    Console(stderr=True).print(f"[yellow]warning:[/] {former_name} is deprecated: use {name} (TRL's name)", highlight=False)
    return former


def _bf16(value: Optional[str]):
    return None if value is None else {"auto": "auto", "true": True, "false": False}.get(value.lower(), value)


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    @app.command("train", cls=DefaultsInHelp)
    def train_cmd(
        dataset: Path = typer.Argument(..., help="Output folder of `tracetune prepare` (holds dataset/)."),
        out: Path = typer.Option(..., "--out", help="Run folder: adapter/, checkpoints/, metrics.json, trackio/."),
        model: Optional[str] = typer.Option(None, "--model", help="Student model id or local folder."),
        config: Optional[Path] = typer.Option(None, "--config", help="TOML with a [train] table (flags override it)."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --out."),
        learning_rate: Optional[float] = typer.Option(None, "--learning-rate", help="Peak learning rate ({train.learning_rate})."),
        lr_scheduler_type: Optional[str] = typer.Option(None, "--lr-scheduler-type", help="Learning-rate schedule ({train.lr_scheduler_type})."),
        lora_r: Optional[int] = typer.Option(None, "--lora-r", help="LoRA rank ({train.lora_r})."),
        lora_alpha: Optional[int] = typer.Option(None, "--lora-alpha", help="LoRA alpha (2 x rank)."),
        lora_dropout: Optional[float] = typer.Option(None, "--lora-dropout", help="LoRA dropout ({train.lora_dropout})."),
        target_modules: Optional[str] = typer.Option(None, "--target-modules", help="Comma-separated module names (default: automatic)."),
        modules_to_save: Optional[str] = typer.Option(None, "--modules-to-save", help="Comma-separated modules trained in full, e.g. lm_head,model.norm."),
        num_train_epochs: Optional[float] = typer.Option(None, "--num-train-epochs", help="Passes over the training split ({train.num_train_epochs})."),
        max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps; overrides --num-train-epochs."),
        per_device_train_batch_size: Optional[int] = typer.Option(None, "--per-device-train-batch-size", help="Sequences per device per step ({train.per_device_train_batch_size})."),
        gradient_accumulation_steps: Optional[int] = typer.Option(None, "--gradient-accumulation-steps", help="Forward passes per optimizer step ({train.gradient_accumulation_steps})."),
        max_length: Optional[int] = typer.Option(None, "--max-length", help="Tokens per sequence ({train.max_length})."),
        packing: Optional[bool] = typer.Option(None, "--packing/--no-packing", help="Pack examples into full rows (documents kept apart)."),
        padding_free: Optional[bool] = typer.Option(None, "--padding-free/--no-padding-free", help="One unpadded row per batch."),
        gradient_checkpointing: Optional[bool] = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Trade compute for memory."),
        decision_weight: Optional[float] = typer.Option(None, "--decision-weight", help="Loss weight of the tokens that pick the next action ({train.decision_weight}; 1 = plain mean)."),
        bf16: Optional[str] = typer.Option(None, "--bf16", help="auto | true | false (auto: where the GPU supports it)."),
        load_in_4bit: Optional[bool] = typer.Option(None, "--load-in-4bit/--no-load-in-4bit", help="QLoRA (CUDA + the 'quant' extra)."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed ({train.seed})."),
        eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="Evaluate every N steps (default: before and after)."),
        save_steps: Optional[int] = typer.Option(None, "--save-steps", help="Checkpoint every N steps ({train.save_steps})."),
        report_to: Optional[str] = typer.Option(None, "--report-to", help="trackio (local) | none."),
        trackio_space_id: Optional[str] = typer.Option(None, "--trackio-space-id", help="Hosted Trackio dashboard (network)."),
        save_merged: Optional[bool] = typer.Option(None, "--save-merged/--no-save-merged", help="Also write OUT/merged."),
        lr: Optional[float] = typer.Option(None, "--lr", hidden=True, help="Former name of --learning-rate."),
        epochs: Optional[float] = typer.Option(None, "--epochs", hidden=True, help="Former name of --num-train-epochs."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", hidden=True, help="Former name of --per-device-train-batch-size."),
        grad_accumulation: Optional[int] = typer.Option(None, "--grad-accumulation", hidden=True, help="Former name of --gradient-accumulation-steps."),
    ) -> None:
        """Fine-tune the student with LoRA on the prepared dataset (works under `accelerate launch`)."""
        from tracetune.pipeline.student import refuse_builtin_name
        from tracetune.train.config import load_train_config
        from tracetune.train.trainer import finish_distributed, is_main_process, train

        cfg = load_train_config(
            config, model=model, learning_rate=former_flag(learning_rate, lr, "--learning-rate", "--lr"),
            lr_scheduler_type=lr_scheduler_type, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
            target_modules=_csv(target_modules), modules_to_save=_csv(modules_to_save),
            num_train_epochs=former_flag(num_train_epochs, epochs, "--num-train-epochs", "--epochs"), max_steps=max_steps,
            per_device_train_batch_size=former_flag(per_device_train_batch_size, batch_size, "--per-device-train-batch-size", "--batch-size"),
            gradient_accumulation_steps=former_flag(gradient_accumulation_steps, grad_accumulation, "--gradient-accumulation-steps", "--grad-accumulation"),
            max_length=max_length, packing=packing, padding_free=padding_free,
            gradient_checkpointing=gradient_checkpointing, bf16=_bf16(bf16), load_in_4bit=load_in_4bit, seed=seed,
            eval_steps=eval_steps, save_steps=save_steps, report_to=report_to, trackio_space_id=trackio_space_id,
            save_merged=save_merged, decision_weight=decision_weight,
        )
        refuse_builtin_name(cfg.model, "--model")
        main = is_main_process()
        console = Console(stderr=True, quiet=not main)
        try:
            with _progress(console) as bar:
                task = bar.add_task("training", total=None)

                def on_progress(step: int, total: int, logs: dict) -> None:
                    loss = f" loss {logs['loss']:.3f}" if "loss" in logs else ""
                    bar.update(task, completed=step, total=total, description=f"training{loss}")

                result = train(cfg, dataset, out, resume=resume, on_progress=on_progress)
        finally:
            finish_distributed()
        if main:
            from tracetune.card.model_card import write_train_card

            write_train_card(result.out_dir, result.adapter_dir)  # tracetune's card in place of PEFT's placeholder
            Console().print(result_table(result))
            Console().print(f"adapter written to [bold]{result.adapter_dir}[/]", highlight=False)


def _progress(console: Console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)


def result_table(result) -> Table:
    """Data kept and dropped, then the figures a user checks first."""
    table = Table(title=f"train ({result.global_step} steps)", show_header=True)
    table.add_column("")
    table.add_column("train", justify="right")
    table.add_column("eval", justify="right")
    tr, ev = result.data["train"], result.data.get("eval")
    for label, key in (("examples", "examples"), ("kept", "kept"), ("cut to max length", "truncated"),
                       ("dropped: nothing supervised", "no_supervised"), ("supervised tokens", "supervised_tokens")):
        table.add_row(label, str(getattr(tr, key)), str(getattr(ev, key)) if ev else "-")
    m = result.metrics
    for label, key in (("loss before training", "eval_loss_before"), ("loss after training", "eval_loss"),
                       ("token accuracy before", "eval_mean_token_accuracy_before"),
                       ("token accuracy after", "eval_mean_token_accuracy")):
        if key in m:
            table.add_row(label, "", f"{m[key]:.4g}")
    if "train_tokens_per_second" in m:
        table.caption = f"throughput {m['train_tokens_per_second']:.0f} tokens/s, final train loss {m.get('train_loss', float('nan')):.4g}"
    return table
