"""From an Episode to what a chat template renders: wire messages plus the target turns.

Applied here, before rendering, each counted in ``ConversationCounts``:

- the teacher-model filter (a target from another model becomes context);
- dropping aborted, errored and empty assistant turns from the context, with
  the results of their tool calls (pi's provider layer skips such turns when it
  builds the next request, so the teacher never saw them);
- clipping huge tool results (head and tail kept, a visible marker between);
- reasoning removed unless ``include_reasoning``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from tracetune.conversation.types import Episode, Message, Session, ToolSpec
from tracetune.conversation.wire import message_to_wire
from tracetune.prepare.config import PrepareConfig

CLIP_MARKER = "\n[... {n} characters clipped by tracetune ...]\n"


@dataclass(frozen=True)
class Conversation:
    """One Episode ready to render: ``messages`` exclude the system prompt, ``targets`` index them."""

    episode_id: str
    session_id: str
    system: str | None
    tools: tuple[dict[str, Any], ...]
    messages: tuple[dict[str, Any], ...]
    targets: tuple[int, ...]

    def with_system(self, messages: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        """``messages`` with the conversation's system prompt put first, when it has one."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + list(messages)


@dataclass
class ConversationCounts:
    """What the conversion changed, summed over Episodes."""

    targets_in: int = 0
    filtered_teacher: int = 0
    dropped_context_turns: Counter = field(default_factory=Counter)  # untrainable reason -> turns removed
    dropped_tool_results: int = 0
    clipped_tool_results: int = 0
    clipped_chars: int = 0
    reasoning_removed: int = 0

    def add(self, other: "ConversationCounts") -> None:
        """Add ``other``'s counts (an Episode converted elsewhere) to these."""
        self.targets_in += other.targets_in
        self.filtered_teacher += other.filtered_teacher
        self.dropped_context_turns.update(other.dropped_context_turns)
        self.dropped_tool_results += other.dropped_tool_results
        self.clipped_tool_results += other.clipped_tool_results
        self.clipped_chars += other.clipped_chars
        self.reasoning_removed += other.reasoning_removed

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict (the dropped context turns by reason)."""
        return {
            "targets_in": self.targets_in,
            "filtered_teacher": self.filtered_teacher,
            "dropped_context_turns": dict(self.dropped_context_turns),
            "dropped_tool_results": self.dropped_tool_results,
            "clipped_tool_results": self.clipped_tool_results,
            "clipped_chars": self.clipped_chars,
            "reasoning_removed": self.reasoning_removed,
        }


def clip_text(text: str, limit: int | None) -> tuple[str, int]:
    """``text`` clipped to about ``limit`` characters (two thirds head, one third tail) and the chars removed."""
    if limit is None or len(text) <= limit:
        return text, 0
    head = (limit * 2) // 3
    tail = limit - head
    removed = len(text) - head - tail
    return text[:head] + CLIP_MARKER.format(n=removed) + text[len(text) - tail :], removed


def _filter_messages(messages: tuple[Message, ...], config: PrepareConfig, counts: ConversationCounts) -> list[Message]:
    kept: list[Message] = []
    skipped_calls: set[str] = set()
    for m in messages:
        if m.role == "assistant":
            counts.targets_in += m.is_target
            if config.drop_failed_turns and not m.trainable and m.untrainable_reason in ("aborted", "error", "empty"):
                counts.dropped_context_turns[m.untrainable_reason] += 1
                skipped_calls.update(c.id for c in m.tool_calls)
                continue
            if m.is_target and not config.teacher_allowed(m.model):
                counts.filtered_teacher += 1
                m = replace(m, trainable=False, untrainable_reason="filtered")
        elif m.role == "tool":
            if m.tool_call_id in skipped_calls:
                counts.dropped_tool_results += 1
                continue
            text, removed = clip_text(m.content, config.clip_tool_result_chars)
            if removed:
                counts.clipped_tool_results += 1
                counts.clipped_chars += removed
                m = replace(m, content=text)
        kept.append(m)
    return kept


def convert_episode(episode: Episode, config: PrepareConfig, counts: ConversationCounts) -> Episode:
    """The Episode as the student will see it (filters, clipping and reasoning applied)."""
    messages = _filter_messages(episode.messages, config, counts)
    if not config.include_reasoning:
        counts.reasoning_removed += sum(1 for m in messages if m.reasoning)
        messages = [replace(m, reasoning=None) if m.reasoning else m for m in messages]
    return replace(episode, messages=tuple(messages))


def to_conversation(session: Session, episode: Episode, tools: tuple[ToolSpec, ...], system: str | None) -> Conversation:
    """The render input of a converted Episode."""
    return Conversation(
        episode_id=episode.id,
        session_id=session.id,
        system=system,
        tools=tuple(t.to_openai() for t in tools),
        messages=tuple(message_to_wire(m, include_meta=False) for m in episode.messages),
        targets=episode.target_indices,
    )
