"""Every text field of a Session, read out and written back (used by ``redact``).

The fields: message content, reasoning, tool-call arguments (keys and string
values at any depth; numbers and tool names untouched), ``arguments_raw``;
the session's cwd, source, parent reference and system prompt; tool
descriptions and parameter schemas; reader warnings (message and path).
Messages shared between Episodes (a common prefix) are rewritten once and
shared again.

Each text is handed over with the name of the field it sits in (``FIELDS``),
so the redaction report can say where things were found.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator

from tracetune.conversation.types import Message, ReadWarning, Session, ToolCall

Rewrite = Callable[[str, str], str]  # (text, field) -> text

#: Where a text can sit, as the redaction report names it.
FIELDS = (
    "user", "assistant_text", "reasoning", "tool_arguments", "tool_argument_keys", "tool_arguments_raw",
    "tool_result", "summary", "bash_execution", "custom_message", "system_prompt", "session_metadata",
    "tool_definitions", "reader_warnings",
)
_USER_ORIGINS = {
    "bashExecution": "bash_execution", "compactionSummary": "summary", "branchSummary": "summary",
    "custom": "custom_message", "hookMessage": "custom_message",
}


def message_field(message: Message) -> str:
    """The report's name for where ``message.content`` sits."""
    if message.role == "assistant":
        return "assistant_text"
    if message.role == "tool":
        return "tool_result"
    if message.role == "system":
        return "system_prompt"
    if message.origin and "summary" in message.origin.lower():
        return "summary"
    return _USER_ORIGINS.get(message.origin or "", "user")


def _strings(value: Any, field: str, key_field: str) -> Iterator[tuple[str, str]]:
    """(text, field) of every string in a JSON value: keys (as ``key_field``) and values."""
    if isinstance(value, str):
        yield value, field
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key, key_field
            yield from _strings(item, field, key_field)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item, field, key_field)


def keyed_strings(value: Any) -> Iterator[tuple[str, str]]:
    """(key, string) for every string value held under a key, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                yield str(key), item
            else:
                yield from keyed_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from keyed_strings(item)


def collect_arguments(sessions: list[Session]) -> Iterator[dict[str, Any]]:
    """The arguments of every distinct tool call (for values whose key says they are secret)."""
    for session in sessions:
        seen: set[int] = set()
        for episode in session.episodes:
            for message in episode.messages:
                if id(message) not in seen:
                    seen.add(id(message))
                    for call in message.tool_calls:
                        yield call.arguments


def _map_json(value: Any, fn: Rewrite, field: str, key_field: str) -> Any:
    """``value`` with ``fn`` applied to every string in it, dictionary keys included (``value`` itself when no
    string changes)."""
    if isinstance(value, str):
        return _same_or_new(value, fn(value, field))
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        changed = False
        for key, item in value.items():
            new_key = _same_or_new(key, fn(key, key_field)) if isinstance(key, str) else key
            while new_key in out:  # two keys redacted alike: keep both
                new_key = f"{new_key}~"
            out[new_key] = new_item = _map_json(item, fn, field, key_field)
            changed = changed or new_key is not key or new_item is not item
        return out if changed else value
    if isinstance(value, (list, tuple)):
        items = [_map_json(item, fn, field, key_field) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


def _same_or_new(old: str, new: str) -> str:
    """``old`` when ``new`` is the same text, so unchanged values keep their object (and what holds them)."""
    return old if new == old else new


def _message_texts(message: Message) -> Iterator[tuple[str, str]]:
    yield message.content, message_field(message)
    if message.reasoning:
        yield message.reasoning, "reasoning"
    for call in message.tool_calls:
        yield from _strings(call.arguments, "tool_arguments", "tool_argument_keys")
        if call.arguments_raw:
            yield call.arguments_raw, "tool_arguments_raw"


def collect_texts(sessions: list[Session]) -> Iterator[str]:
    """Every text of every session, in order (repeats included; callers cache)."""
    for text, _ in collect_fields(sessions):
        yield text


def collect_fields(sessions: list[Session]) -> Iterator[tuple[str, str]]:
    """(text, field) for every text of every session, in order (repeats included)."""
    for session in sessions:
        for value in (session.cwd, session.source, session.parent_ref):
            if value:
                yield value, "session_metadata"
        if session.system_prompt:
            yield session.system_prompt, "system_prompt"
        for tool in session.tools:
            yield tool.description, "tool_definitions"
            yield from _strings(tool.parameters, "tool_definitions", "tool_definitions")
        for warning in session.warnings:
            yield warning.message, "reader_warnings"
            yield warning.path, "reader_warnings"
        seen: set[int] = set()
        for episode in session.episodes:
            for message in episode.messages:
                if id(message) not in seen:
                    seen.add(id(message))
                    yield from _message_texts(message)


def _map_call(call: ToolCall, fn: Rewrite) -> ToolCall:
    raw = _same_or_new(call.arguments_raw, fn(call.arguments_raw, "tool_arguments_raw")) if call.arguments_raw \
        else call.arguments_raw
    arguments = _map_json(call.arguments, fn, "tool_arguments", "tool_argument_keys")
    if raw is call.arguments_raw and arguments is call.arguments:
        return call
    return replace(call, arguments=arguments, arguments_raw=raw)


def _map_message(message: Message, fn: Rewrite) -> Message:
    """``message`` with ``fn`` applied to its texts; the same object when none changes (most messages)."""
    content = _same_or_new(message.content, fn(message.content, message_field(message)))
    reasoning = _same_or_new(message.reasoning, fn(message.reasoning, "reasoning")) if message.reasoning \
        else message.reasoning
    calls = tuple(_map_call(c, fn) for c in message.tool_calls)
    if content is message.content and reasoning is message.reasoning and all(
            new is old for new, old in zip(calls, message.tool_calls)):
        return message
    return replace(message, content=content, reasoning=reasoning, tool_calls=calls)


def _opt(value: str | None, fn: Rewrite, field: str) -> str | None:
    return fn(value, field) if value else value


def map_session(session: Session, fn: Rewrite) -> Session:
    """``session`` with ``fn(text, field)`` applied to every text field (see the module docstring)."""
    done: dict[int, Message] = {}

    def message(m: Message) -> Message:
        if id(m) not in done:
            done[id(m)] = _map_message(m, fn)
        return done[id(m)]

    episodes = tuple(replace(ep, messages=tuple(message(m) for m in ep.messages)) for ep in session.episodes)
    tools = tuple(
        replace(t, description=fn(t.description, "tool_definitions"),
                parameters=_map_json(t.parameters, fn, "tool_definitions", "tool_definitions"))
        for t in session.tools
    )
    return replace(
        session,
        source=fn(session.source, "session_metadata"),
        cwd=_opt(session.cwd, fn, "session_metadata"),
        parent_ref=_opt(session.parent_ref, fn, "session_metadata"),
        system_prompt=_opt(session.system_prompt, fn, "system_prompt"),
        tools=tools,
        warnings=tuple(
            ReadWarning(w.kind, fn(w.message, "reader_warnings"), fn(w.path, "reader_warnings"), w.line)
            for w in session.warnings
        ),
        episodes=episodes,
    )
