"""Config defaults in ``--help``, read from the config models themselves (one source for each default).

An option's help names a default as ``{train.learning_rate}`` or ``{prepare.max_length}``; the
command class fills it from the pydantic model's field when help is shown, so the CLI never
imports pydantic (or the configs) to start and never repeats a number the config owns.
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperCommand

PLACEHOLDER = re.compile(r"\{(train|prepare|eval)\.(\w+)\}")


def _models() -> dict[str, Any]:
    from tracetune.eval.config import EvalConfig
    from tracetune.prepare.config import PrepareConfig
    from tracetune.train.config import TrainConfig

    return {"train": TrainConfig, "prepare": PrepareConfig, "eval": EvalConfig}


def config_default(section: str, name: str) -> Any:
    """The default of ``[section] name`` as its config model declares it."""
    field = _models()[section].model_fields[name]
    return field.get_default(call_default_factory=True)


def fill(text: str | None) -> str | None:
    """``text`` with each ``{section.field}`` replaced by that field's default."""
    if not text or "{" not in text:
        return text

    def shown(match: re.Match) -> str:
        value = config_default(match.group(1), match.group(2))
        return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    return PLACEHOLDER.sub(shown, text)


class DefaultsInHelp(TyperCommand):
    """A command whose option help may name config defaults as ``{section.field}``."""

    def format_help(self, ctx, formatter) -> None:
        """Fill the placeholders, then format as usual."""
        self.help = fill(self.help)
        for param in self.params:
            if getattr(param, "help", None):
                param.help = fill(param.help)
        return super().format_help(ctx, formatter)
