"""Checks on a message list: does every tool result answer a call, every call get a result?

Pure functions over ``Message`` values; readers turn the issues into counted
warnings with file and line, prepare may use them to filter. Two kinds:

- ``orphan_tool_result``: a ``tool`` message whose ``tool_call_id`` matches
  no tool call of an earlier assistant message in the list (e.g. the call was
  summarised away by a compaction that kept the result);
- ``unanswered_tool_call``: an assistant tool call with no later ``tool``
  message for its id, while the conversation moved on to a non-tool message.
  A call at the very end of the list is not reported: the session may simply
  stop there (the agent was killed mid-turn).

What is not checked: the order of results among themselves, and whether a
result's ``name`` matches its call's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from tracetune.conversation.types import Message

PairingKind = Literal["orphan_tool_result", "unanswered_tool_call"]


@dataclass(frozen=True)
class PairingIssue:
    kind: PairingKind
    index: int  # the message at fault (the tool message, or the assistant that called)
    tool_call_id: str


def pairing_issues(messages: Sequence[Message]) -> list[PairingIssue]:
    """Every pairing problem of ``messages``, in message order."""
    issues: list[PairingIssue] = []
    called: set[str] = set()
    for i, m in enumerate(messages):
        if m.role == "assistant":
            called.update(c.id for c in m.tool_calls)
        elif m.role == "tool" and (m.tool_call_id or "") not in called:
            issues.append(PairingIssue("orphan_tool_result", i, m.tool_call_id or ""))
    answered_at: dict[str, int] = {}
    for i, m in enumerate(messages):
        if m.role == "tool" and m.tool_call_id:
            answered_at.setdefault(m.tool_call_id, i)
    last_non_tool = max((i for i, m in enumerate(messages) if m.role != "tool"), default=-1)
    for i, m in enumerate(messages):
        if m.role != "assistant" or not m.tool_calls or i >= last_non_tool:
            continue
        for call in m.tool_calls:
            if answered_at.get(call.id, -1) <= i:
                issues.append(PairingIssue("unanswered_tool_call", i, call.id))
    issues.sort(key=lambda issue: issue.index)
    return issues
