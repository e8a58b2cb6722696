"""``prepare_stats.json`` as a typed model: what ``prepare`` hands to the run, the CLI and the report.

``PrepareStats`` (``prepare/stats.py``) counts while the traces stream by; its
``to_dict`` is validated into a ``PrepareSummary`` here, and that model is what
leaves the stage (``PrepareResult.stats``) and what is written to and read back
from ``prepare_stats.json``. Every field has an empty default, so an older or
partial file still loads; unknown keys are refused, so a renamed figure cannot
go unnoticed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileError(_Figures):
    """A trace file that was skipped, and why (both redacted)."""

    path: str = ""
    error: str = ""


class ReadFigures(_Figures):
    """What reading found: files, skipped files, reader warnings by kind, sessions and episodes."""

    files: int = 0
    file_errors: list[FileError] = Field(default_factory=list)
    warnings_by_kind: dict[str, int] = Field(default_factory=dict)
    sessions: int = 0
    episodes: int = 0


class TurnFigures(_Figures):
    """Trainable turns (after the conversion filters), the ones supervised, and the rest by reason."""

    trainable: int = 0
    supervised: int = 0
    dropped_by_reason: dict[str, int] = Field(default_factory=dict)
    kept_fraction: float | None = None
    fallback_turns: int = 0
    truncated: int = 0


class SplitExamples(_Figures):
    """One split's windows: how many, their tokens and supervised tokens, longest and mean length."""

    examples: int = 0
    turns_supervised: int = 0
    tokens: int = 0
    supervised_tokens: int = 0
    tokens_per_supervised_token: float | None = None
    max_tokens: int = 0
    mean_tokens: float = 0


class TokenFigures(_Figures):
    """Tokens forwarded and supervised over both splits."""

    total: int = 0
    supervised: int = 0
    tokens_per_supervised_token: float | None = None
    boundary_tokens: int = 0


class PrefixFigures(_Figures):
    """The fixed prefix (system prompt + tool definitions) of one agent's sessions, in tokens."""

    sessions: int = 0
    min: int = 0
    median: int = 0
    max: int = 0


class SessionSummary(_Figures):
    """What one session gave: its split, target turns, supervised turns, drops by reason, prefix size."""

    session_id: str = ""
    source: str = ""
    agent: str = "unknown"
    split: str = "train"
    targets: int = 0
    supervised: int = 0
    dropped_by_reason: dict[str, int] = Field(default_factory=dict)
    prefix_tokens: int = 0


class SplitSummary(_Figures):
    """Sessions in each split, and the split's warning (e.g. one family only)."""

    train_sessions: int = 0
    eval_sessions: int = 0
    warning: str | None = None


class ConversionFigures(_Figures):
    """What turning sessions into conversations filtered, dropped and clipped."""

    targets_in: int = 0
    filtered_teacher: int = 0
    dropped_context_turns: dict[str, int] = Field(default_factory=dict)
    dropped_tool_results: int = 0
    clipped_tool_results: int = 0
    clipped_chars: int = 0
    reasoning_removed: int = 0


class PrepareSummary(_Figures):
    """Everything ``prepare`` kept, dropped and why (the content of ``prepare_stats.json``)."""

    version: int = 1
    strategy: str = ""
    max_length: int = 0
    student: str | None = None
    read: ReadFigures = Field(default_factory=ReadFigures)
    episodes_without_targets: int = 0
    turns: TurnFigures = Field(default_factory=TurnFigures)
    examples: dict[str, SplitExamples] = Field(
        default_factory=lambda: {"train": SplitExamples(), "eval": SplitExamples()})
    tokens: TokenFigures = Field(default_factory=TokenFigures)
    windowed_episodes: int = 0
    windows: int = 0
    tool_calls_supervised: dict[str, int] = Field(default_factory=dict)
    prefix_tokens_by_agent: dict[str, PrefixFigures] = Field(default_factory=dict)
    sessions: list[SessionSummary] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)
    conversion: ConversionFigures = Field(default_factory=ConversionFigures)
    split: SplitSummary = Field(default_factory=SplitSummary)
    warnings: list[str] = Field(default_factory=list)

    def split_examples(self, split: str) -> SplitExamples:
        """The figures of ``split`` ('train' or 'eval'); empty when the split has none."""
        return self.examples.get(split) or SplitExamples()

    @classmethod
    def load(cls, path: Path) -> "PrepareSummary":
        """Read a ``prepare_stats.json``."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
