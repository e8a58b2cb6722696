"""Plain ``messages`` JSONL: the OpenAI / TRL shape, one conversation per line.

Each line is ``{"messages": [...], "tools": [...]}`` (see
``conversation.wire``): roles ``system`` / ``developer`` / ``user`` /
``assistant`` / ``tool``, content as text or a list of parts, tool call
arguments as an object or a JSON string.

Semantics (what this reader decides):

- **Each line is one Session with one Episode** (start ``record``): lines of a
  converted dataset are independent conversations, and a Session is the unit
  the split keeps together. The exception is tracetune's own export
  (``episode_to_wire`` with meta): lines carrying the same
  ``tracetune.session_id`` are Episodes of one Session again, with the agent
  and source they were exported from, so an export reads back as it was.
- A leading ``system`` (or ``developer``) message becomes
  ``Session.system_prompt``; ``tools`` become ``Session.tools`` (a Session
  re-assembled from an export takes the first line's).
- Assistant messages are targets unless the record's ``tracetune`` meta says
  otherwise; one with no text and no tool call is context (reason
  ``empty``). An assistant message repeated as the prefix of a later line of
  the same exported Session is already marked in the meta.
- Arguments that are not a JSON object are kept as ``{"input": text}`` with
  ``arguments_raw`` and a ``bad_arguments`` warning. A line that is not in
  the messages shape is skipped with a ``bad_field`` warning naming why.
- Tool calls and results are not re-paired: the record is taken as the
  conversation its author meant; pairing problems are warned about.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tracetune.conversation.types import Episode, Message, ReadWarning, Session, SessionStats, ToolSpec
from tracetune.conversation.validate import pairing_issues
from tracetune.conversation.wire import WireError, episode_from_wire, parse_arguments
from tracetune.readers.base import Line, WarningSink, iter_json_lines, open_text

FORMAT = "messages"
AGENT = "messages"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def sniff(first_objects: list[dict[str, Any]]) -> bool:
    """Whether any of the first objects holds a ``messages`` list whose first items have a role."""
    for obj in first_objects:
        msgs = obj.get("messages")
        if isinstance(msgs, list) and all(_has_role(m) for m in msgs[:3]):
            return True
    return False


def _has_role(message: Any) -> bool:
    return isinstance(message, dict) and isinstance(message.get("role"), str) and message["role"] in ROLES


def read(path: Path) -> list[Session]:
    """The sessions of a ``messages`` JSONL file (one per line, or per exported Session); never none."""
    path = Path(path)
    sink = WarningSink(path)
    lines = list(iter_json_lines(open_text(path), sink))
    if not lines:
        sink.warn("empty_file", "file holds no records")
        return [Session(id=path.stem, source=str(path), agent=AGENT, episodes=(), warnings=tuple(sink.items))]
    groups: dict[str, list[tuple[Line, Episode, tuple[ToolSpec, ...], str | None]]] = {}
    order: list[str] = []
    for ln in lines:
        parsed = _record(ln, path, sink)
        if parsed is None:
            continue
        key = _group_key(ln, path)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((ln, *parsed))
    sessions = [_session(key, groups[key], path) for key in order]
    _attach_warnings(sessions, sink.items, groups, order)
    return sessions or [Session(id=path.stem, source=str(path), agent=AGENT, episodes=(), warnings=tuple(sink.items))]


def _group_key(ln: Line, path: Path) -> str:
    meta = ln.value.get("tracetune")
    sid = meta.get("session_id") if isinstance(meta, dict) else None
    return f"session:{sid}" if isinstance(sid, str) and sid else f"{path.stem}:{ln.number}"


def _record(ln: Line, path: Path, sink: WarningSink):
    record = dict(ln.value)
    raw_messages = record.get("messages")
    if isinstance(raw_messages, list) and raw_messages and isinstance(raw_messages[0], dict) \
            and raw_messages[0].get("role") == "developer":
        record["messages"] = [{**raw_messages[0], "role": "system"}, *raw_messages[1:]]
    try:
        episode, tools, system = episode_from_wire(record, default_id=f"{path.stem}:{ln.number}")
    except (WireError, TypeError, ValueError, AttributeError, KeyError) as exc:
        sink.warn("bad_field", f"not a messages record ({exc}); skipped", ln.number)
        return None
    _check_arguments(record.get("messages") or [], sink, ln.number)
    messages = tuple(_settle(m, i, ln.number) for i, m in enumerate(episode.messages))
    if any(m.role == "system" for m in messages):
        sink.warn("bad_field", "a system message after the first one is kept as a user message", ln.number)
        messages = tuple(replace(m, role="user", origin=m.origin or "system") if m.role == "system" else m
                         for m in messages)
    for issue in pairing_issues(messages):
        sink.warn(issue.kind, f"tool call/result {issue.tool_call_id!r} is not paired (message {issue.index})",
                  ln.number)
    start = episode.start if episode.start in ("root", "compaction", "branch", "record", "sidechain") else "record"
    return replace(episode, messages=messages, start=start), tools, system


def _check_arguments(raw_messages: list[Any], sink: WarningSink, line: int) -> None:
    for m in raw_messages:
        for call in (m.get("tool_calls") or []) if isinstance(m, dict) else []:
            fn = call.get("function", call) if isinstance(call, dict) else {}
            if isinstance(fn, dict) and not parse_arguments(fn.get("arguments"))[2]:
                sink.warn("bad_arguments", f"arguments of {fn.get('name')!r} are not a JSON object; kept as text", line)


def _settle(m: Message, index: int, line: int) -> Message:
    """Give every message a source reference; empty assistant turns are context only."""
    if not m.entry_id:
        m = replace(m, entry_id=f"L{line}:{index}")
    if m.role == "assistant" and m.trainable and not m.content.strip() and not m.tool_calls:
        m = replace(m, trainable=False, untrainable_reason="empty")
    if m.role == "assistant" and not m.trainable and m.untrainable_reason is None:
        m = replace(m, untrainable_reason="filtered")
    return m


def _session(key: str, items, path: Path) -> Session:
    first_line, first_ep, tools, system = items[0]
    meta = first_line.value.get("tracetune") if isinstance(first_line.value.get("tracetune"), dict) else {}
    episodes = tuple(ep for _, ep, _, _ in items)
    models = []
    for ep in episodes:
        for m in ep.messages:
            if m.role == "assistant" and m.model and m.model not in models:
                models.append(m.model)
    sid = key.removeprefix("session:")
    return Session(
        id=sid,
        source=str(path),
        agent=str(meta.get("agent") or AGENT),
        episodes=episodes,
        teacher_models=tuple(models),
        system_prompt=system,
        tools=tools,
        stats=SessionStats(
            entries=len(items),
            assistant_entries=sum(ep.assistant_count for ep in episodes),
            leaves=len(episodes),
            images=sum(m.images for ep in episodes for m in ep.messages),
        ),
    )


def _attach_warnings(sessions: list[Session], warnings: list[ReadWarning], groups, order) -> None:
    """Each warning goes to the Session of its line; file-level ones (no line) to the first."""
    owner: dict[int, int] = {ln.number: i for i, key in enumerate(order) for ln, *_ in groups[key]}
    buckets: list[list[ReadWarning]] = [[] for _ in sessions]
    for w in warnings:
        if sessions:
            buckets[owner.get(w.line or -1, 0)].append(w)
    for i, s in enumerate(sessions):
        sessions[i] = replace(s, warnings=tuple(buckets[i]))
