"""``train()``: one LoRA SFT run with TRL's ``SFTTrainer`` on a prepared dataset.

Writes into ``out_dir``: ``adapter/`` (PEFT adapter + tokenizer),
``checkpoints/checkpoint-N`` (resumable), ``train_config.json``,
``metrics.json`` (figures, data counts, LoRA targets, log history) and, with
Trackio, ``trackio/`` (a local SQLite dashboard; nothing leaves the machine
unless ``trackio_space_id`` is set).

Device placement, mixed precision and process groups are left to the
Trainer / ``accelerate launch``: the same call runs on CPU, one GPU or many.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tracetune.errors import TracetuneError
from tracetune.train.config import TrainConfig, canonical_names
from tracetune.train.data import SplitSummary, prepare_splits
from tracetune.train.lora import LoraTargets, resolve_lora_targets
from tracetune.train.model import build_sft_args, load_base_model, load_training_tokenizer, lora_config
from tracetune.train.tracking import log_against_optimizer_step
from tracetune.util.files import atomic_write_json
from tracetune.util.memory import heap_trim_callback

log = logging.getLogger(__name__)
ProgressFn = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    adapter_dir: Path
    global_step: int
    metrics: dict[str, float]  # final figures (eval_loss, eval_loss_before, train_tokens_per_second, ...)
    data: dict[str, SplitSummary]
    targets: tuple[str, ...]
    resumed_from: str | None = None
    merged_dir: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def last_checkpoint(out_dir: str | Path) -> str | None:
    """The newest checkpoint folder in ``out_dir/checkpoints``, or None when there is none."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(out_dir) / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def train(
    config: TrainConfig,
    dataset_dir: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    *,
    callbacks: Iterable[Any] = (),
    on_progress: ProgressFn | None = None,
) -> TrainResult:
    """Train a LoRA adapter; ``resume=True`` continues from the last checkpoint in ``out_dir``."""
    out = Path(out_dir)
    checkpoint = last_checkpoint(out)
    if checkpoint and not resume:
        raise TracetuneError(
            f"{out} already holds checkpoints of an earlier run", hint="pass --resume to continue it, or pick a new --out"
        )
    if checkpoint:
        _check_same_config(out, config)
    out.mkdir(parents=True, exist_ok=True)
    point_trackio_at(out, config)

    with _quiet(out):
        trainer, targets, summaries = build_trainer(config, dataset_dir, out, eval_on_start=checkpoint is None)
    _warn_dropped(summaries)
    trainer.add_callback(heap_trim_callback())  # see util/memory.py: the heap fragments over a long run
    for callback in callbacks:
        trainer.add_callback(callback)
    if on_progress is not None:
        trainer.add_callback(progress_callback(on_progress))
    if trainer.is_world_process_zero():
        atomic_write_json(
            out / "train_config.json",
            {"config": config.model_dump(mode="json"), "lora_targets": targets.summary()},
            default=str,
            end="",
        )

    with _quiet(out):
        output = trainer.train(resume_from_checkpoint=checkpoint)
    adapter = out / "adapter"
    trainer.save_model(str(adapter))
    metrics = _final_metrics(trainer.state.log_history, output.metrics, trainer)
    result = TrainResult(
        out, adapter, trainer.state.global_step, metrics, summaries, targets.modules, checkpoint,
        history=list(trainer.state.log_history),
    )
    if trainer.is_world_process_zero():
        if config.save_merged:
            from tracetune.engines.merge import merge_adapter

            result = _replace_merged(result, merge_adapter(adapter, out / "merged"))
        atomic_write_json(out / "metrics.json", _metrics_record(result, targets), default=str, end="")
    return result


def build_trainer(config: TrainConfig, dataset_dir: str | Path, out_dir: str | Path, *, eval_on_start: bool = True):
    """The ``SFTTrainer`` ``train`` runs, with the LoRA targets and the data counts."""
    from trl import SFTTrainer

    out = Path(out_dir)
    train_set, eval_set, summaries = prepare_splits(dataset_dir, config.max_length, config.eval_max_tokens, config.seed)
    tokenizer = load_training_tokenizer(config, dataset_dir)
    model = load_base_model(config)
    targets = resolve_lora_targets(model, config.target_modules)
    args = build_sft_args(config, out, has_eval=eval_set is not None, eval_on_start=eval_on_start)
    trainer = _sft_trainer_class(SFTTrainer, config)(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=lora_config(config, targets),
    )
    log_against_optimizer_step(trainer)  # the dashboard's x-axis is the optimizer step, not Trackio's log count
    return trainer, targets, summaries


def _sft_trainer_class(base: type, config: TrainConfig) -> type:
    """``SFTTrainer`` that adds ``tokens_per_second`` to training logs and weights decision tokens.

    ``tokens_per_second`` counts since the previous log; ``decision_weight`` is ``train/decision.py``.
    """

    class ThroughputSFTTrainer(base):
        def train(self, *args, **kwargs):
            self._tt_mark = (time.perf_counter(), self._total_train_tokens)
            return super().train(*args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if config.decision_weight == 1 or not self.model.training or return_outputs:
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            from tracetune.train.decision import decision_loss

            return decision_loss(self, model, inputs, num_items_in_batch, config)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            mark = getattr(self, "_tt_mark", None)
            if mark is not None and "loss" in logs and self.model.training:
                now, tokens = time.perf_counter(), self._total_train_tokens
                if now > mark[0]:
                    logs["tokens_per_second"] = round((tokens - mark[1]) / (now - mark[0]), 1)
                self._tt_mark = (now, tokens)
            super().log(logs, start_time)

    return ThroughputSFTTrainer


def _warn_dropped(summaries: dict[str, SplitSummary]) -> None:
    for name, s in summaries.items():
        if s.no_supervised:
            log.warning(
                "%s split: %d of %d examples have no supervised token within max_length and are left out",
                name, s.no_supervised, s.examples,
            )


def progress_callback(fn: ProgressFn):
    """A ``TrainerCallback`` calling ``fn(step, max_steps, last_logs)`` after every optimizer step."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        last: dict[str, float] = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.last = dict(logs or {})

        def on_step_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                fn(state.global_step, state.max_steps, self.last)

    return _Progress()


def stop_at_step(step: int):
    """A ``TrainerCallback`` that ends training after optimizer step ``step``, evaluated and checkpointed there.

    The schedule stays that of the full ``max_steps``, so resuming the checkpoint later continues the same run.
    """
    from transformers import TrainerCallback

    class _StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                control.should_evaluate = args.eval_strategy != "no"
                control.should_save = True
                control.should_training_stop = True
            return control

    return _StopAt()


def _final_metrics(history: list[dict[str, Any]], train_metrics: dict[str, float], trainer) -> dict[str, float]:
    evals = [h for h in history if "eval_loss" in h]
    metrics: dict[str, float] = {k: float(v) for k, v in train_metrics.items() if isinstance(v, (int, float))}
    if evals:
        metrics.update({k: float(v) for k, v in evals[-1].items() if k.startswith("eval_") and k != "eval_num_tokens"})
        if evals[0].get("step") == 0:
            metrics["eval_loss_before"] = float(evals[0]["eval_loss"])
            if "eval_mean_token_accuracy" in evals[0]:
                metrics["eval_mean_token_accuracy_before"] = float(evals[0]["eval_mean_token_accuracy"])
    runtime = metrics.get("train_runtime", 0.0)
    tokens = getattr(trainer, "_total_train_tokens", 0)
    if runtime > 0 and tokens:
        metrics["train_tokens"] = float(tokens)
        metrics["train_tokens_per_second"] = round(tokens / runtime, 1)
    return metrics


def _metrics_record(result: TrainResult, targets: LoraTargets) -> dict[str, Any]:
    return {
        "global_step": result.global_step,
        "metrics": result.metrics,
        "data": {name: s.to_dict() for name, s in result.data.items()},
        "lora_targets": {"decoder": targets.decoder_path, "leaf_names": list(targets.leaf_names), "count": len(targets.modules)},
        "resumed_from": result.resumed_from,
        "adapter": str(result.adapter_dir),
        "merged": str(result.merged_dir) if result.merged_dir else None,
        "history": result.history,
    }


def _replace_merged(result: TrainResult, merged: Path) -> TrainResult:
    from dataclasses import replace

    return replace(result, merged_dir=merged)


def _check_same_config(out: Path, config: TrainConfig) -> None:
    saved = out / "train_config.json"
    if not saved.exists():
        return
    before = canonical_names(json.loads(saved.read_text("utf-8")).get("config", {}))  # saved under former names
    now = config.model_dump(mode="json")
    fields = type(config).model_fields
    defaults = {k: f.get_default(call_default_factory=True) for k, f in fields.items() if not f.is_required()}
    changed = sorted(k for k in set(before) | set(now) if before.get(k, defaults.get(k)) != now.get(k))  # a field added since keeps its default
    if changed:
        raise TracetuneError(
            f"cannot resume {out}: the config changed since the checkpoint ({', '.join(changed)})",
            hint="resume with the same options, or start a new run in another folder",
        )


def point_trackio_at(out: Path, config: TrainConfig) -> None:
    """Keep Trackio's SQLite in ``out/trackio``; trackio reads TRACKIO_DIR once, when first imported,
    so a second run in the same process (a sweep) logs into the first folder chosen."""
    if config.report_to == "trackio" and "TRACKIO_DIR" not in os.environ and "trackio" not in sys.modules:
        os.environ["TRACKIO_DIR"] = str((out / "trackio").resolve())


@contextlib.contextmanager
def _quiet(out: Path):
    """Trackio's banners (and its misleading 'Uploading logs') and the Trainer's log lines go to
    ``out/train_stdout.log``; library progress bars and deprecation chatter are switched off."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets_on, hf_on = not datasets.are_progress_bars_disabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        with open(out / "train_stdout.log", "a", encoding="utf-8") as sink, contextlib.redirect_stdout(sink), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6.*", category=FutureWarning)
            yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if hf_on:
            hf_logging.enable_progress_bar()


def is_main_process() -> bool:
    """Rank 0 of an ``accelerate launch`` / ``torchrun`` job, or a plain single process."""
    return os.environ.get("RANK", "0") == "0"


def finish_distributed() -> None:
    """Tear down a process group left by ``accelerate launch`` (a gloo run aborted at exit without it)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
