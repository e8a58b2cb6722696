"""``SweepConfig``: the grid of variants and the rule that will pick the winner.

The rule is part of the config on purpose: it is written to
``selection_rule.json`` before the first variant trains, and selection
applies that file, never a rule chosen after seeing the scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tracetune.errors import ConfigError
from tracetune.train.config import format_errors, read_toml

#: Variant fields a tie can be broken on (smaller first), besides ``name``.
TieKey = Literal["lora_r", "max_length", "lr", "name"]


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


class SweepGrid(BaseModel):
    """Values to try per field of the train config; an empty list keeps the train config's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: list[float] = Field(default_factory=list, description="Learning rates to try.")
    lora_r: list[int] = Field(default_factory=list, description="LoRA ranks to try.")
    max_length: list[int] = Field(default_factory=list, description="Sequence lengths to try.")

    @field_validator("lr")
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


def load_sweep_config(path: str | Path | None = None, **overrides: Any) -> SweepConfig:
    """``[sweep]`` of a TOML file (or its top-level ``grid`` / ``rule`` tables), with overrides.

    Overrides: ``lr``, ``lora_r``, ``max_length`` (lists, into the grid), ``metric``,
    ``direction`` (into the rule); None leaves the file's value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(path)
        data = raw["sweep"] if "sweep" in raw else {k: raw[k] for k in ("grid", "rule") if k in raw}
    grid = dict(data.get("grid", {}))
    rule = dict(data.get("rule", {}))
    for key in ("lr", "lora_r", "max_length"):
        if overrides.get(key) is not None:
            grid[key] = overrides[key]
    for key in ("metric", "direction"):
        if overrides.get(key) is not None:
            rule[key] = overrides[key]
    try:
        return SweepConfig.model_validate({**data, "grid": grid, "rule": rule})
    except ValidationError as exc:
        raise ConfigError(f"invalid sweep config:\n{format_errors(exc)}", hint="see `tracetune sweep --help`") from None
