"""Variants of a run: the grid expanded into named train configs (pure, no I/O).

Names read like ``lr2e-4-r16-len4k``: learning rate in short scientific
notation, LoRA rank, max length in thousands where it divides evenly.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from tracetune.errors import ConfigError
from tracetune.sweep.config import SweepConfig
from tracetune.train.config import TrainConfig


@dataclass(frozen=True)
class Variant:
    name: str
    learning_rate: float
    lora_r: int
    max_length: int

    def apply(self, base: TrainConfig) -> TrainConfig:
        """``base`` with this variant's values (and its name as the tracker's run name)."""
        data = base.model_dump() | self.params() | {"run_name": self.name}
        return TrainConfig(**data)

    def params(self) -> dict[str, float | int]:
        """The train config values this variant sets (learning rate, LoRA rank, max length)."""
        return {"learning_rate": self.learning_rate, "lora_r": self.lora_r, "max_length": self.max_length}


def format_lr(lr: float) -> str:
    """``2e-4``, ``1.5e-3``, ``1e-2``: the shortest exact scientific form."""
    mantissa, exponent = f"{lr:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def format_length(tokens: int) -> str:
    """``4k`` for 4096, ``1.5k`` for 1536, ``512`` below 1024 or when not a multiple of 512."""
    if tokens >= 1024 and tokens % 512 == 0:
        return f"{tokens / 1024:g}k"
    return str(tokens)


def variant_name(lr: float, lora_r: int, max_length: int) -> str:
    """The variant's name, such as ``lr2e-4-r16-len4k``."""
    return f"lr{format_lr(lr)}-r{lora_r}-len{format_length(max_length)}"


def expand(sweep: SweepConfig, base: TrainConfig) -> list[Variant]:
    """Every combination of the grid, in grid order; raises ``ConfigError`` on duplicate names."""
    lrs = sweep.grid.learning_rate or [base.learning_rate]
    ranks = sweep.grid.lora_r or [base.lora_r]
    lengths = sweep.grid.max_length or [base.max_length]
    variants = [Variant(variant_name(lr, r, n), lr, r, n) for lr, r, n in product(lrs, ranks, lengths)]
    names = [v.name for v in variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"the sweep grid repeats variants: {', '.join(dupes)}", hint="remove repeated values from the grid")
    return variants
