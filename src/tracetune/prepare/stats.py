"""What ``prepare`` kept, dropped and why, at every step (``prepare_stats.json``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tracetune.prepare.windows import EpisodeExamples

STATS_VERSION = 1


@dataclass(frozen=True)
class EpisodeFigures:
    """What the stats need of one Episode's examples (small: it travels back from worker processes)."""

    examples: tuple[tuple[int, int, int, int], ...]  # (tokens, supervised tokens, boundary tokens, turns) per example
    dropped: Counter
    fallback_turns: int = 0
    windowed: bool = False
    prefix_tokens: int = 0
    truncated_turns: int = 0

    @classmethod
    def of(cls, result: EpisodeExamples) -> "EpisodeFigures":
        """The figures of one Episode's examples, drop reasons and windowing, taken from ``result``."""
        examples = tuple((ex.rendered.num_tokens, ex.rendered.num_supervised, ex.rendered.boundary_tokens, len(ex.targets))
                         for ex in result.examples)
        return cls(examples, Counter(result.dropped), result.fallback_turns, result.windowed, result.prefix_tokens,
                   result.truncated_turns)


@dataclass
class SplitFigures:
    """Figures for one split (train or eval)."""

    examples: int = 0
    tokens: int = 0
    supervised: int = 0
    turns: int = 0
    lengths: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The split's counts, with tokens per supervised token and the longest and mean example length."""
        return {
            "examples": self.examples,
            "turns_supervised": self.turns,
            "tokens": self.tokens,
            "supervised_tokens": self.supervised,
            "tokens_per_supervised_token": round(self.tokens / self.supervised, 3) if self.supervised else None,
            "max_tokens": max(self.lengths, default=0),
            "mean_tokens": round(sum(self.lengths) / len(self.lengths), 1) if self.lengths else 0,
        }


@dataclass
class SessionFigures:
    """What one session gave: its split, target turns, supervised turns, dropped turns by reason, prefix size."""

    session_id: str
    source: str
    agent: str
    split: str
    targets: int = 0
    supervised: int = 0
    dropped: Counter = field(default_factory=Counter)
    prefix_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The session's figures as a JSON-ready dict (dropped turns sorted by reason)."""
        return {
            "session_id": self.session_id, "source": self.source, "agent": self.agent, "split": self.split,
            "targets": self.targets, "supervised": self.supervised, "dropped_by_reason": dict(sorted(self.dropped.items())),
            "prefix_tokens": self.prefix_tokens,
        }


@dataclass
class PrepareStats:
    files: int = 0
    file_errors: list[dict[str, str]] = field(default_factory=list)
    read_warnings: Counter = field(default_factory=Counter)
    sessions: int = 0
    episodes: int = 0
    episodes_without_targets: int = 0
    targets_after_filters: int = 0
    turns_dropped: Counter = field(default_factory=Counter)  # reason -> target turns not supervised
    fallback_turns: int = 0
    truncated_turns: int = 0
    windowed_episodes: int = 0
    boundary_tokens: int = 0
    splits: dict[str, SplitFigures] = field(default_factory=lambda: {"train": SplitFigures(), "eval": SplitFigures()})
    tool_calls: Counter = field(default_factory=Counter)  # tool name -> calls in supervised turns
    seconds: dict[str, float] = field(default_factory=dict)
    by_session: dict[str, SessionFigures] = field(default_factory=dict)

    def add_session_episode(self, session, split: str, targets: int, result: EpisodeExamples | EpisodeFigures) -> None:
        """Count one episode's turns under its session (source paths are redacted by the caller's session)."""
        result = _figures(result)
        fig = self.by_session.get(session.id)
        if fig is None:
            fig = self.by_session[session.id] = SessionFigures(session.id, str(session.source), session.agent, split)
        fig.targets += targets
        fig.supervised += sum(turns for *_, turns in result.examples)
        fig.dropped.update(result.dropped)
        fig.prefix_tokens = max(fig.prefix_tokens, result.prefix_tokens)

    def prefix_by_agent(self) -> dict[str, dict[str, int]]:
        """Tokens of the fixed prefix (system prompt + tools) per agent: min, median, max over its sessions."""
        sizes: dict[str, list[int]] = {}
        for fig in self.by_session.values():
            sizes.setdefault(fig.agent, []).append(fig.prefix_tokens)
        return {agent: {"sessions": len(v), "min": min(v), "median": sorted(v)[len(v) // 2], "max": max(v)}
                for agent, v in sorted(sizes.items())}

    def add_episode(self, split: str, result: EpisodeExamples | EpisodeFigures, tool_names: list[str]) -> None:
        """Count one episode's examples, tokens and dropped turns under ``split``, and its supervised tool calls."""
        result = _figures(result)
        fig = self.splits[split]
        self.turns_dropped.update(result.dropped)
        self.fallback_turns += result.fallback_turns
        self.truncated_turns += result.truncated_turns
        self.windowed_episodes += result.windowed
        for tokens, supervised, boundary, turns in result.examples:
            fig.examples += 1
            fig.tokens += tokens
            fig.supervised += supervised
            fig.turns += turns
            fig.lengths.append(tokens)
            self.boundary_tokens += boundary
        self.tool_calls.update(tool_names)

    @property
    def turns_supervised(self) -> int:
        """Assistant turns supervised, over both splits."""
        return sum(f.turns for f in self.splits.values())

    def to_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every figure in the ``prepare_stats.json`` layout (read, turns, examples, tokens...), ``extra`` merged in."""
        supervised = self.turns_supervised
        tokens = sum(f.tokens for f in self.splits.values())
        sup_tokens = sum(f.supervised for f in self.splits.values())
        out: dict[str, Any] = {
            "version": STATS_VERSION,
            "read": {
                "files": self.files,
                "file_errors": self.file_errors,
                "warnings_by_kind": dict(sorted(self.read_warnings.items())),
                "sessions": self.sessions,
                "episodes": self.episodes,
            },
            "episodes_without_targets": self.episodes_without_targets,
            "turns": {
                "trainable": self.targets_after_filters,
                "supervised": supervised,
                "dropped_by_reason": dict(sorted(self.turns_dropped.items())),
                "kept_fraction": round(supervised / self.targets_after_filters, 4) if self.targets_after_filters else None,
                "fallback_turns": self.fallback_turns,
                "truncated": self.truncated_turns,
            },
            "examples": {name: fig.to_dict() for name, fig in self.splits.items()},
            "tokens": {
                "total": tokens,
                "supervised": sup_tokens,
                "tokens_per_supervised_token": round(tokens / sup_tokens, 3) if sup_tokens else None,
                "boundary_tokens": self.boundary_tokens,
            },
            "windowed_episodes": self.windowed_episodes,
            "windows": sum(f.examples for f in self.splits.values()),
            "tool_calls_supervised": dict(self.tool_calls.most_common()),
            "prefix_tokens_by_agent": self.prefix_by_agent(),
            "sessions": [fig.to_dict() for fig in self.by_session.values()],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
        out.update(extra or {})
        return out


def _figures(result: EpisodeExamples | EpisodeFigures) -> EpisodeFigures:
    return result if isinstance(result, EpisodeFigures) else EpisodeFigures.of(result)
