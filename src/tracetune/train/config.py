"""``TrainConfig``: every option of one LoRA SFT run, documented field by field.

The config is a plain value: it reads no files and no environment. Hardware
dependent choices (``bf16="auto"``) are resolved by ``resolve_precision`` at
train time, from what the machine actually has.

Option names are TRL's / ``TrainingArguments``' (``learning_rate``,
``per_device_train_batch_size``, ...). The names tracetune used before
(``DEPRECATED_NAMES``) are still read, with a ``FutureWarning``.
"""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tracetune.errors import ConfigError

#: tracetune's former option names -> TRL's (``TrainingArguments``) names, which the config now uses.
DEPRECATED_NAMES: dict[str, str] = {
    "lr": "learning_rate",
    "lr_scheduler": "lr_scheduler_type",
    "epochs": "num_train_epochs",
    "per_device_batch_size": "per_device_train_batch_size",
    "grad_accumulation": "gradient_accumulation_steps",
}


class DeprecatedOption(FutureWarning):
    """A former option name was used; the CLI prints it as one ``warning:`` line."""


def canonical_names(data: Any, renames: dict[str, str] = DEPRECATED_NAMES, where: str = "train",
                    warn: bool = False) -> Any:
    """``data`` with former option names renamed (a ``DeprecatedOption`` warning each when ``warn``).

    A former name given beside its new one is an error: the two could disagree.
    """
    if not isinstance(data, dict) or not any(old in data for old in renames):
        return data
    out = dict(data)
    for old, new in renames.items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"give {new} only ({old} is its former name)")
        out[new] = out.pop(old)
        if warn:
            warnings.warn(f"[{where}] {old} is deprecated: write {new} (TRL's name)", DeprecatedOption, stacklevel=3)
    return out


class TrainConfig(BaseModel):
    """One LoRA SFT run of a causal LM on a prepared dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Hugging Face model id or local path of the student (base) model.")
    trust_remote_code: bool = Field(False, description="Allow model code from the model repository (only for ids you trust).")

    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (formerly `lr`).")
    lr_scheduler_type: str = Field("cosine", description="Learning-rate schedule, a transformers SchedulerType name (formerly `lr_scheduler`).")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Fraction of the steps spent warming the learning rate up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")

    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int | None = Field(None, ge=1, description="LoRA alpha; default 2 x rank, so a rank sweep keeps the same scale.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] | None = Field(
        None,
        description="Module names to adapt, overriding the automatic choice "
        "(attention and MLP projections of the language decoder).",
    )
    modules_to_save: list[str] | None = Field(
        None,
        description="Modules trained in full beside the LoRA weights and saved in the adapter (PEFT "
        "modules_to_save), e.g. ['lm_head', 'norm'] for a student whose output layer was never trained.",
    )

    num_train_epochs: float = Field(1.0, gt=0, description="Passes over the training split, ignored when max_steps is set (formerly `epochs`).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps; overrides num_train_epochs.")
    per_device_train_batch_size: int = Field(1, ge=1, description="Sequences per device per forward pass (formerly `per_device_batch_size`).")
    gradient_accumulation_steps: int = Field(4, ge=1, description="Forward passes per optimizer step (formerly `grad_accumulation`).")
    max_length: int = Field(4096, ge=8, description="Tokens per sequence; longer examples are cut at the end (start kept).")

    decision_weight: float = Field(
        1.0, ge=1, description="Loss weight of the tokens where the assistant picks its next action (the first "
        "decision_tokens of each assistant turn and of each tool call, through the tool's name); 1 = the plain "
        "token mean. Training only: eval_loss stays the plain mean.",
    )
    decision_tokens: int = Field(16, ge=1, description="Targets weighted by decision_weight at each turn's start and each tool call.")

    packing: bool = Field(False, description="Pack several examples into one max_length row (best-fit, documents kept apart).")
    padding_free: bool = Field(False, description="Concatenate a batch into one row without padding (needs flash-attention-style kernels to be fast).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: less memory, ~30% slower.")
    bf16: bool | Literal["auto"] = Field("auto", description="bfloat16 mixed precision; 'auto' = on where a GPU supports it, off on CPU.")
    hub_kernels: bool = Field(False, description="Let transformers fetch and run its Hub kernels (kernels-community/...) on a GPU; off: works offline, runs no downloaded code.")
    load_in_4bit: bool = Field(False, description="QLoRA: load the base model in 4-bit (needs CUDA and the 'quant' extra).")
    seed: int = Field(0, description="Seed for initialisation, data order and dropout.")

    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (None: once before and once after training).")
    eval_max_tokens: int | None = Field(
        65536, ge=1, description="Token budget of the eval loss measured during training: a seeded sample of the eval "
        "windows that fits it (None: every window). The full held-out scoring is the eval stage's.",
    )
    eval_before_train: bool = Field(True, description="Measure the untrained eval loss first, for a before/after figure.")
    save_steps: int = Field(50, ge=1, description="Write a resumable checkpoint every N steps.")
    save_total_limit: int | None = Field(2, ge=1, description="Checkpoints to keep (oldest removed first); None keeps all.")
    logging_steps: int = Field(5, ge=1, description="Log loss, token accuracy and throughput every N steps.")

    report_to: Literal["trackio", "none"] = Field("trackio", description="Experiment tracker: Trackio (local SQLite by default) or none.")
    trackio_project: str = Field("tracetune", description="Trackio project name (one dashboard groups its runs).")
    trackio_space_id: str | None = Field(None, description="Hugging Face Space for a hosted Trackio dashboard (network); None = local only.")
    run_name: str | None = Field(None, description="Name of the run in the tracker; default: the output folder's name.")

    save_merged: bool = Field(False, description="Also write out_dir/merged: the base model with the adapter merged in.")

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: Any) -> Any:
        return canonical_names(data, warn=True)

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.packing and self.padding_free:
            raise ValueError("packing already trains padding-free: set only one of packing and padding_free")
        if self.target_modules is not None and not self.target_modules:
            raise ValueError("target_modules must name at least one module (or be left unset)")
        return self

    @property
    def alpha(self) -> int:
        """The LoRA alpha: ``lora_alpha`` when set, else twice ``lora_r``."""
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r

    # Former names, read-only, for code written against them.
    @property
    def lr(self) -> float:
        """Former name of ``learning_rate``."""
        return self.learning_rate

    @property
    def lr_scheduler(self) -> str:
        """Former name of ``lr_scheduler_type``."""
        return self.lr_scheduler_type

    @property
    def epochs(self) -> float:
        """Former name of ``num_train_epochs``."""
        return self.num_train_epochs

    @property
    def per_device_batch_size(self) -> int:
        """Former name of ``per_device_train_batch_size``."""
        return self.per_device_train_batch_size

    @property
    def grad_accumulation(self) -> int:
        """Former name of ``gradient_accumulation_steps``."""
        return self.gradient_accumulation_steps


def parse_train_config(data: dict[str, Any]) -> TrainConfig:
    """Validate a dict (from TOML or flags), listing every bad key in one ``ConfigError``."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid train config:\n{format_errors(exc)}", hint="see `tracetune train --help`") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file at ``path``; an unreadable file or bad TOML is a ``ConfigError``."""
    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config {file}: {exc}", hint="give a TOML file") from None


def read_section(path: str | Path | None, section: str) -> dict[str, Any]:
    """The ``[section]`` table of a TOML file (a run config), or the whole file when it has none."""
    if path is None:
        return {}
    data = read_toml(path)
    table = data.get(section, data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{section}] must be a table")
    return table


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """``[train]`` of a TOML file (or a plain table), with the given fields overriding it (None = unset)."""
    data = canonical_names(read_section(path, "train"), warn=True)  # so a flag under the new name replaces it
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return parse_train_config(data)


def format_errors(exc: ValidationError) -> str:
    """One indented ``where: message`` line per validation error of ``exc``."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(config)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def resolve_precision(config: TrainConfig, *, cuda: bool, cuda_bf16: bool) -> bool:
    """Whether to train in bf16 on this hardware; refuses what the hardware cannot do."""
    if config.bf16 == "auto":
        return cuda and cuda_bf16
    if config.bf16 and cuda and not cuda_bf16:
        raise ConfigError("bf16 was asked for, but this GPU does not support bfloat16", hint="set bf16 = false or 'auto'")
    return bool(config.bf16)
