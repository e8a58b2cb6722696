"""Checks shared by the readers that assemble tool calls and results themselves."""

from __future__ import annotations

from dataclasses import replace

from tracetune.conversation.types import Message
from tracetune.readers.base import WarningSink


def pair_tool_results(messages: list[Message], sink: WarningSink) -> list[Message]:
    """Keep each tool result right after the call it answers.

    A result whose call is not open (no assistant call with that id since the
    last non-tool message) is dropped with an ``orphan_tool_result`` warning; a
    call left unanswered when the conversation moves on is kept and warned
    about (``unanswered_tool_call``); one at the very end is not (the agent may
    have been stopped there), as in ``conversation.validate``. Results missing
    a tool name get the call's.
    """
    out: list[Message] = []
    open_calls: dict[str, str] = {}
    for m in messages:
        if m.role == "tool":
            if m.tool_call_id not in open_calls:
                sink.warn("orphan_tool_result",
                          f"tool result {m.tool_call_id} (entry {m.entry_id}) has no open call before it; dropped")
                continue
            name = open_calls.pop(m.tool_call_id)
            out.append(m if m.name else replace(m, name=name))
            continue
        _warn_unanswered(open_calls, sink)
        open_calls = {c.id: c.name for c in m.tool_calls} if m.role == "assistant" else {}
        out.append(m)
    return out


def _warn_unanswered(open_calls: dict[str, str], sink: WarningSink) -> None:
    for call_id, name in open_calls.items():
        sink.warn("unanswered_tool_call", f"tool call {call_id} ({name}) has no result; kept")


def mark_seen(messages: list[Message], seen: set[str], copies: dict[str, Message] | None = None) -> list[Message]:
    """Assistant turns already judged in an earlier Episode become context (reason ``seen``).

    ``copies`` (entry id -> its ``seen`` copy) lets Episodes share one copy.
    """
    copies = {} if copies is None else copies
    out = []
    for m in messages:
        if m.role == "assistant" and m.entry_id:
            if m.entry_id in seen:
                if m.entry_id not in copies:
                    copies[m.entry_id] = replace(m, trainable=False, untrainable_reason="seen")
                m = copies[m.entry_id]
            else:
                seen.add(m.entry_id)
        out.append(m)
    return out


def dedupe_warnings(items):
    """One warning per (kind, line, message): shared prefixes are walked once per Episode."""
    seen, out = set(), []
    for w in items:
        key = (w.kind, w.line, w.message)
        if key not in seen:
            seen.add(key)
            out.append(w)
    return out
