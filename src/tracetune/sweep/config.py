"""``SweepConfig``: the grid of variants and the rule that will pick the winner.

The rule is part of the config on purpose: it is written to
``selection_rule.json`` before the first variant trains, and selection
applies that file, never a rule chosen after seeing the scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tracetune.errors import ConfigError
from tracetune.train.config import canonical_names, format_errors, read_toml

#: Variant fields a tie can be broken on (smaller first), besides ``name``; ``lr`` is learning_rate's former name.
TieKey = Literal["lora_r", "max_length", "learning_rate", "lr", "name"]
GRID_RENAMES = {"lr": "learning_rate"}


class SelectionRule(BaseModel):
    """How the winner is chosen: best ``metric`` in ``direction``; ties broken in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field("eval_loss", description="Figure from a variant's metrics.json (held-out loss on assistant tokens).")
    direction: Literal["min", "max"] = Field("min", description="Whether smaller or larger is better.")
    tolerance: float = Field(0.0, ge=0, description="Scores this close to the best count as a tie.")
    tie_break: list[TieKey] = Field(
        default_factory=lambda: ["lora_r", "max_length", "name"],
        description="Among tied variants prefer the smaller value of each key in turn (cheaper first).",
    )

    rung_steps: int | None = Field(
        None, ge=1, description="Successive halving with one rung: every variant trains to this optimizer step "
        "(on the schedule of the full max_steps) and is scored there; only the best continues to max_steps. "
        "Most of the compute then goes to the winner.",
    )

    @field_validator("tie_break")
    @classmethod
    def _former_names(cls, keys: list[str]) -> list[str]:
        return [GRID_RENAMES.get(k, k) for k in keys]


class SweepGrid(BaseModel):
    """Values to try per field of the train config; an empty list keeps the train config's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: list[float] = Field(default_factory=list, description="Learning rates to try (formerly `lr`).")
    lora_r: list[int] = Field(default_factory=list, description="LoRA ranks to try.")
    max_length: list[int] = Field(default_factory=list, description="Sequence lengths to try.")

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: Any) -> Any:
        return canonical_names(data, GRID_RENAMES, where="sweep.grid", warn=True)

    @property
    def lr(self) -> list[float]:
        """Former name of ``learning_rate``, read-only."""
        return self.learning_rate

    @field_validator("learning_rate")
    @classmethod
    def _positive_lr(cls, values: list[float]) -> list[float]:
        if any(v <= 0 for v in values):
            raise ValueError("learning rates must be positive")
        return values

    @field_validator("lora_r", "max_length")
    @classmethod
    def _positive_int(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values):
            raise ValueError("ranks and lengths must be at least 1")
        return values


class SweepConfig(BaseModel):
    """Variants = the product of the grid (learning rate x LoRA rank x max length), and the rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid: SweepGrid = Field(default_factory=SweepGrid, description="The grid of variants.")
    rule: SelectionRule = Field(default_factory=SelectionRule, description="The selection rule, fixed before training.")
    isolate_variants: bool = Field(
        True, description="Train each variant in a process of its own, so the run's peak memory is one variant's "
        "rather than every variant's together (costs a few seconds of start-up a variant).",
    )


def load_sweep_config(path: str | Path | None = None, **overrides: Any) -> SweepConfig:
    """``[sweep]`` of a TOML file (or its top-level ``grid`` / ``rule`` tables), with overrides.

    Overrides: ``learning_rate`` (or its former name ``lr``), ``lora_r``, ``max_length``
    (lists, into the grid), ``metric``, ``direction`` (into the rule); None leaves the file's value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(path)
        data = raw["sweep"] if "sweep" in raw else {k: raw[k] for k in ("grid", "rule") if k in raw}
    grid = dict(data.get("grid", {}))
    rule = dict(data.get("rule", {}))
    if overrides.get("learning_rate") is None:
        overrides["learning_rate"] = overrides.get("lr")
    if overrides["learning_rate"] is not None:
        grid.pop("lr", None)  # the flag replaces the file's rates, under either name
    for key in ("learning_rate", "lora_r", "max_length"):
        if overrides.get(key) is not None:
            grid[key] = overrides[key]
    for key in ("metric", "direction"):
        if overrides.get(key) is not None:
            rule[key] = overrides[key]
    try:
        return SweepConfig.model_validate({**data, "grid": grid, "rule": rule})
    except ValidationError as exc:
        raise ConfigError(f"invalid sweep config:\n{format_errors(exc)}", hint="see `tracetune sweep --help`") from None
