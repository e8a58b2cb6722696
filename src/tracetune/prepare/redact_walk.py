"""Every text field of a Session, read out and written back (used by ``redact``).

The fields: message content, reasoning, tool-call arguments (string values
at any depth; keys, numbers and tool names untouched), ``arguments_raw``;
the session's cwd, source, parent reference and system prompt; tool
descriptions; reader warnings (message and path). Messages shared between
Episodes (a common prefix) are rewritten once and shared again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator

from tracetune.conversation.types import Message, ReadWarning, Session, ToolCall

Rewrite = Callable[[str], str]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


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


def _map_strings(value: Any, fn: Rewrite) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, fn) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, fn) for item in value]
    if isinstance(value, tuple):
        return tuple(_map_strings(item, fn) for item in value)
    return value


def _message_texts(message: Message) -> Iterator[str]:
    yield message.content
    if message.reasoning:
        yield message.reasoning
    for call in message.tool_calls:
        yield from _strings(call.arguments)
        if call.arguments_raw:
            yield call.arguments_raw


def collect_texts(sessions: list[Session]) -> Iterator[str]:
    """Every text of every session, in order (repeats included; callers cache)."""
    for session in sessions:
        for value in (session.cwd, session.source, session.parent_ref, session.system_prompt):
            if value:
                yield value
        for tool in session.tools:
            yield tool.description
        for warning in session.warnings:
            yield warning.message
            yield warning.path
        seen: set[int] = set()
        for episode in session.episodes:
            for message in episode.messages:
                if id(message) not in seen:
                    seen.add(id(message))
                    yield from _message_texts(message)


def _map_call(call: ToolCall, fn: Rewrite) -> ToolCall:
    raw = fn(call.arguments_raw) if call.arguments_raw else call.arguments_raw
    return replace(call, arguments=_map_strings(call.arguments, fn), arguments_raw=raw)


def _map_message(message: Message, fn: Rewrite) -> Message:
    return replace(
        message,
        content=fn(message.content),
        reasoning=fn(message.reasoning) if message.reasoning else message.reasoning,
        tool_calls=tuple(_map_call(c, fn) for c in message.tool_calls),
    )


def _opt(value: str | None, fn: Rewrite) -> str | None:
    return fn(value) if value else value


def map_session(session: Session, fn: Rewrite) -> Session:
    """``session`` with ``fn`` applied to every text field (see the module docstring)."""
    done: dict[int, Message] = {}

    def message(m: Message) -> Message:
        if id(m) not in done:
            done[id(m)] = _map_message(m, fn)
        return done[id(m)]

    episodes = tuple(replace(ep, messages=tuple(message(m) for m in ep.messages)) for ep in session.episodes)
    return replace(
        session,
        source=fn(session.source),
        cwd=_opt(session.cwd, fn),
        parent_ref=_opt(session.parent_ref, fn),
        system_prompt=_opt(session.system_prompt, fn),
        tools=tuple(replace(t, description=fn(t.description)) for t in session.tools),
        warnings=tuple(ReadWarning(w.kind, fn(w.message), fn(w.path), w.line) for w in session.warnings),
        episodes=episodes,
    )

