"""Write episodes as pi session files (format version 3), the way pi itself stores them.

One file: a header line ``{"type": "session", "version": 3, "id", "timestamp",
"cwd"}`` then one entry per line, each with an 8-hex-digit ``id`` and the
``parentId`` of the entry before it on its branch. Messages use pi's shapes:
user ``{role, content, timestamp}``; assistant ``{role, content: [thinking |
text | toolCall blocks], api, provider, model, usage, stopReason, timestamp}``;
toolResult ``{role, toolCallId, toolName, content: [text], isError, timestamp}``.
Compaction and branch-summary entries and a moved leaf (``branch``) let the
scripted teacher write sessions with pi's tree features. Ids and timestamps
come from a seeded generator and a clock the caller may fix, so a scripted
teacher's sessions get the same ids and times on every run.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from tracetune.conversation.types import Message
from tracetune.util.files import atomic_write_text


@dataclass(frozen=True)
class Usage:
    input: int = 0
    output: int = 0

    def to_pi(self) -> dict[str, Any]:
        """This usage in pi's ``usage`` shape (no cache figures, no cost)."""
        zero = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}
        return {"input": self.input, "output": self.output, "cacheRead": 0, "cacheWrite": 0,
                "totalTokens": self.input + self.output, "cost": zero}


class StepClock:
    """A deterministic clock: ``start`` plus ``step`` per call."""

    def __init__(self, start: datetime, step: timedelta = timedelta(seconds=2)):
        self._now = start
        self._step = step

    def __call__(self) -> datetime:
        self._now += self._step
        return self._now


def wall_clock() -> datetime:
    """The current time, in UTC."""
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


class PiSessionWriter:
    """Builds one pi session in memory; ``save`` writes it (write to a temp name, then rename)."""

    def __init__(self, cwd: str, *, provider: str = "tracetune", model: str = "student", api: str = "tracetune-local",
                 seed: int | None = None, clock: Callable[[], datetime] = wall_clock):
        self._rng = random.Random(seed)
        self._clock = clock
        self.provider, self.model, self.api = provider, model, api
        self.started = clock()
        self.id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self.header = {"type": "session", "version": 3, "id": self.id, "timestamp": _iso(self.started), "cwd": cwd}
        self.entries: list[dict[str, Any]] = []
        self.leaf_id: str | None = None

    def new_id(self) -> str:
        """A fresh 8-hex-digit entry id, unused in this session."""
        taken = {e["id"] for e in self.entries}
        while True:
            candidate = f"{self._rng.getrandbits(32):08x}"
            if candidate not in taken:
                return candidate

    def tool_call_id(self) -> str:
        """A fresh random tool call id (``call_`` and 16 hex digits)."""
        return f"call_{self._rng.getrandbits(64):016x}"

    def _append(self, entry_type: str, at: datetime | None = None, **fields: Any) -> str:
        entry_id = self.new_id()
        when = at or self._clock()
        entry = {"type": entry_type, "id": entry_id, "parentId": self.leaf_id, "timestamp": _iso(when), **fields}
        self.entries.append(entry)
        self.leaf_id = entry_id
        return entry_id

    def _message(self, message: dict[str, Any]) -> str:
        when = self._clock()
        message["timestamp"] = _ms(when)
        return self._append("message", at=when, message=message)

    def model_change(self, provider: str | None = None, model: str | None = None) -> str:
        """Append a ``model_change`` entry (this writer's model by default); return its id."""
        return self._append("model_change", provider=provider or self.provider, modelId=model or self.model)

    def thinking_level_change(self, level: str = "off") -> str:
        """Append a ``thinking_level_change`` entry; return its id."""
        return self._append("thinking_level_change", thinkingLevel=level)

    def user(self, text: str) -> str:
        """Append a user message holding ``text``; return its entry id."""
        return self._message({"role": "user", "content": [{"type": "text", "text": text}]})

    def assistant(self, message: Message, usage: Usage = Usage(), stop_reason: str | None = None,
                  error_message: str | None = None) -> str:
        """Append ``message`` as a pi assistant message (thinking, text, tool calls); return its entry id."""
        blocks: list[dict[str, Any]] = []
        if message.reasoning:
            blocks.append({"type": "thinking", "thinking": message.reasoning})
        if message.content:
            blocks.append({"type": "text", "text": message.content})
        for call in message.tool_calls:
            blocks.append({"type": "toolCall", "id": call.id, "name": call.name, "arguments": call.arguments})
        reason = stop_reason or ("toolUse" if message.tool_calls else "stop")
        body = {"role": "assistant", "content": blocks, "api": self.api, "provider": self.provider,
                "model": self.model, "usage": usage.to_pi(), "stopReason": reason}
        if error_message:
            body["errorMessage"] = error_message
        return self._message(body)

    def tool_result(self, call_id: str, tool_name: str, text: str, is_error: bool = False) -> str:
        """Append the result of tool call ``call_id``; return its entry id."""
        return self._message({"role": "toolResult", "toolCallId": call_id, "toolName": tool_name,
                              "content": [{"type": "text", "text": text}], "isError": is_error})

    def compaction(self, summary: str, first_kept_id: str, tokens_before: int) -> str:
        """Append a compaction entry keeping the entries from ``first_kept_id`` on; return its id."""
        return self._append("compaction", summary=summary, firstKeptEntryId=first_kept_id, tokensBefore=tokens_before)

    def branch(self, entry_id: str) -> None:
        """Move the leaf back to ``entry_id``; the next entry starts a new branch there."""
        if entry_id not in {e["id"] for e in self.entries}:
            raise ValueError(f"no entry {entry_id} to branch from")
        self.leaf_id = entry_id

    def branch_summary(self, from_id: str, summary: str) -> str:
        """Append a summary of the branch left at ``from_id``; return its entry id."""
        return self._append("branch_summary", fromId=from_id, summary=summary)

    def file_name(self) -> str:
        """The session's file name: its start time, then its id."""
        stamp = _iso(self.started).replace(":", "-").replace(".", "-")
        return f"{stamp}_{self.id}.jsonl"

    def save(self, directory: str | Path) -> Path:
        """Write the session (header, then entries) into ``directory`` atomically; return the file's path."""
        path = Path(directory) / self.file_name()
        lines = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n" for obj in [self.header, *self.entries])
        atomic_write_text(path, "".join(lines))
        return path


def teacher_clock(seed: int) -> StepClock:
    """A fixed, seed-dependent start time for reproducible teacher sessions."""
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc) + timedelta(minutes=7 * (seed % 20_000))
    return StepClock(start, timedelta(seconds=3))
