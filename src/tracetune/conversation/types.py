"""The canonical conversation values every stage shares.

Readers turn agent session files into these; nothing downstream knows which
agent wrote them. They are plain frozen values: no I/O, no identity beyond
their fields, no validation side effects (see ``validate.py`` for checks).

Vocabulary:

- ``Message``: one model-visible message. Roles are the OpenAI/TRL ones
  (``system``, ``user``, ``assistant``, ``tool``). Agent-specific messages that
  the agent converts before calling its model (pi's ``bashExecution``,
  summaries, custom messages) arrive here already converted, with ``origin``
  naming what they were.
- ``Episode``: one growing context. For every assistant message at index ``i``
  that is a target, ``messages[:i]`` is exactly the context the teacher saw
  when it produced ``messages[i]``. A compaction or a branch starts a new
  Episode, so every assistant turn of a session is a target in exactly one
  Episode (it may appear in others as context).
- ``Session``: one trace file (or one record of a messages JSONL), its
  Episodes and what the reader noticed while reading it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]

#: Why an assistant message is context only, never a training target.
UntrainableReason = Literal[
    "aborted",  # the user interrupted the turn
    "error",  # the provider returned an error
    "empty",  # no text and no tool call
    "seen",  # a target in an earlier Episode (shared prefix, kept after compaction)
    "sidechain",  # a subagent turn kept apart from the main conversation
    "filtered",  # removed by a downstream filter (e.g. teacher model)
]


@dataclass(frozen=True)
class ToolCall:
    """A call the assistant asked for. ``arguments`` is always a dict.

    When the agent recorded arguments that are not a JSON object (a string
    that does not parse, free text for a custom tool), the reader keeps the
    text under ``arguments_raw`` and puts ``{"input": text}`` in ``arguments``.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_raw: str | None = None


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    # role == "tool"
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    # assistant turns
    trainable: bool = False
    untrainable_reason: UntrainableReason | None = None
    model: str | None = None  # teacher model id, "provider/model" where known
    stop_reason: str | None = None
    # provenance
    origin: str | None = None  # e.g. "bashExecution", "compactionSummary", "branchSummary", "custom"
    images: int = 0  # images removed from this message (each left a placeholder)
    entry_id: str | None = None  # the source entry (pi id, Claude uuid, line number)

    @property
    def is_target(self) -> bool:
        """Whether this is an assistant message to train on."""
        return self.role == "assistant" and self.trainable


@dataclass(frozen=True)
class ToolSpec:
    """A tool definition in the OpenAI function shape (``parameters`` is a JSON schema)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        """This tool as an OpenAI ``function`` tool definition."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


EpisodeStart = Literal["root", "compaction", "branch", "record", "sidechain"]  # sidechain: a subagent conversation


@dataclass(frozen=True)
class Episode:
    id: str
    messages: tuple[Message, ...]
    start: EpisodeStart = "root"
    leaf_id: str | None = None  # the leaf entry whose path this Episode follows

    @property
    def target_indices(self) -> tuple[int, ...]:
        """Indices of the messages to train on."""
        return tuple(i for i, m in enumerate(self.messages) if m.is_target)

    @property
    def assistant_count(self) -> int:
        """How many assistant messages the episode holds, targets or not."""
        return sum(1 for m in self.messages if m.role == "assistant")

    def context_for(self, index: int) -> tuple[Message, ...]:
        """The messages the teacher saw before producing ``messages[index]``."""
        return self.messages[:index]


WarningKind = Literal[
    "invalid_json",
    "truncated_line",
    "not_an_object",
    "unknown_entry",
    "unknown_role",
    "unknown_block",
    "dangling_parent",
    "cycle",
    "duplicate_id",
    "orphan_tool_result",
    "unanswered_tool_call",
    "bad_arguments",
    "missing_header",
    "bad_field",
    "compaction_target_missing",
    "empty_file",
    "ignored_line",
    "bad_encoding",
    "lossy_messages_source",
]


@dataclass(frozen=True)
class ReadWarning:
    """Something the reader could not take as it was. Counted, never silent."""

    kind: WarningKind
    message: str
    path: str
    line: int | None = None


@dataclass(frozen=True)
class SessionStats:
    """Figures about a session file that are not visible from its Episodes."""

    entries: int = 0
    assistant_entries: int = 0
    compactions: int = 0
    branch_points: int = 0
    leaves: int = 0
    images: int = 0
    ignored: dict[str, int] = field(default_factory=dict)  # entry/line types skipped on purpose, by type


@dataclass(frozen=True)
class Session:
    id: str
    source: str
    agent: str  # "pi", "claude-code", "codex", "messages"
    episodes: tuple[Episode, ...]
    format_version: str | None = None
    parent_ref: str | None = None  # the session this one was forked/branched from (a path or an id)
    cwd: str | None = None
    teacher_models: tuple[str, ...] = ()
    system_prompt: str | None = None  # the teacher's own system prompt, where the trace records it
    tools: tuple[ToolSpec, ...] = ()  # tool definitions carried by the trace, where it has them
    warnings: tuple[ReadWarning, ...] = ()
    stats: SessionStats = field(default_factory=SessionStats)

    @property
    def assistant_turns(self) -> int:
        """Distinct assistant turns (each is a target or context-only in exactly one Episode)."""
        return sum(
            1
            for ep in self.episodes
            for m in ep.messages
            if m.role == "assistant" and m.untrainable_reason != "seen"
        )

    @property
    def trainable_turns(self) -> int:
        """How many assistant turns of the session's episodes are trained on."""
        return sum(len(ep.target_indices) for ep in self.episodes)
