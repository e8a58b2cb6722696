"""Token lengths of a set of sessions under a student's template, before anything is written.

``measure(config, sessions, tokenizer)`` renders nothing to disk: per
session, the fixed prefix (system prompt and the tools that session had) and,
per target turn, the smallest window that can supervise it: the prefix and
the turn itself (the context before it can be squeezed, the turn cannot;
``prepare.windows`` drops a turn as ``too_long`` by the same measure). ``suggest_max_length`` picks a
sequence length from those figures. ``tracetune init --traces`` uses both to
write a config that works on the first try.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from tracetune.conversation.types import Session
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.conversations import ConversationCounts, convert_episode, to_conversation
from tracetune.prepare.tools import ToolCatalog
from tracetune.prepare.planner import Planner

#: Sequence lengths considered, smallest first (each one a common training length).
CANDIDATES = (1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 32768)
#: A length is enough when this share of the trainable turns fits in one window.
TURNS_FITTING = 0.9
#: ... and the fixed prefix takes at most this share of it (else every window is mostly prefix).
PREFIX_SHARE = 0.5


@dataclass
class LengthProfile:
    """Prefix tokens per session (by agent) and the smallest window of each target turn."""

    prefix_by_agent: dict[str, list[int]] = field(default_factory=dict)
    turn_windows: list[int] = field(default_factory=list)

    def prefix_median(self) -> int:
        """The median prefix size in tokens over every session of every agent (0 when none)."""
        sizes = sorted(n for values in self.prefix_by_agent.values() for n in values)
        return sizes[len(sizes) // 2] if sizes else 0

    def fitting(self, max_length: int) -> float:
        """Share of target turns whose smallest window fits ``max_length``."""
        if not self.turn_windows:
            return 0.0
        return sum(n <= max_length for n in self.turn_windows) / len(self.turn_windows)


def measure(config: PrepareConfig, sessions: Iterable[Session], tokenizer) -> LengthProfile:
    """Prefix and smallest-window lengths of every target turn, rendered with ``tokenizer``'s template."""
    sessions = list(sessions)
    catalog = ToolCatalog.from_sessions(sessions, config.tools_file)
    system = config.resolved_system_prompt()
    profile = LengthProfile()
    counts = ConversationCounts()
    for session in sessions:
        tools = catalog.for_session(session)
        prefix = 0
        for episode in session.episodes:
            converted = convert_episode(episode, config, counts)
            if not converted.target_indices:
                continue
            conv = to_conversation(session, converted, tools, system or session.system_prompt)
            planner = Planner(tokenizer, conv, config.head_user_chars, config.window_marker)
            prefix = max(prefix, planner.base)
            profile.turn_windows += [planner.base + planner.costs[t] for t in conv.targets]
        profile.prefix_by_agent.setdefault(session.agent, []).append(prefix)
    return profile


def suggest_max_length(profile: LengthProfile, cap: int | None = None) -> int:
    """The smallest candidate length that fits most turns and leaves room beside the prefix (at most ``cap``)."""
    allowed = [n for n in CANDIDATES if cap is None or n <= cap] or [CANDIDATES[0]]
    for length in allowed:
        if profile.fitting(length) >= TURNS_FITTING and profile.prefix_median() <= length * PREFIX_SHARE:
            return length
    return allowed[-1]
