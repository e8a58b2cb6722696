"""The OpenAI/TRL ``messages`` + ``tools`` wire shape: export and parse.

One JSON object per Episode::

    {"messages": [{"role": "assistant", "content": "...",
                   "tool_calls": [{"id": "c1", "type": "function",
                                   "function": {"name": "read", "arguments": {"path": "a.py"}}}]},
                  {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "..."}],
     "tools": [{"type": "function", "function": {"name": ..., "parameters": {...}}}]}

Reasoning travels as ``reasoning_content`` (the key chat templates such as
Qwen3's read). tracetune's own per-message fields (trainability, teacher
model, origin) travel under ``"tracetune"`` so an export read back loses
nothing; other tools ignore that key.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from tracetune.conversation.types import Episode, Message, Session, ToolCall, ToolSpec


def tool_call_to_wire(call: ToolCall, arguments_as_string: bool = False) -> dict[str, Any]:
    """``call`` in the OpenAI tool call shape, its arguments a dict or a JSON string."""
    args: Any = json.dumps(call.arguments, ensure_ascii=False) if arguments_as_string else call.arguments
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": args}}


def message_to_wire(message: Message, *, include_reasoning: bool = True, include_meta: bool = True) -> dict[str, Any]:
    """``message`` in the wire shape, with reasoning and tracetune's meta unless turned off."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [tool_call_to_wire(c) for c in message.tool_calls]
    if include_reasoning and message.reasoning:
        out["reasoning_content"] = message.reasoning
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        if message.name:
            out["name"] = message.name
    if include_meta:
        meta = _meta(message)
        if meta:
            out["tracetune"] = meta
    return out


def _meta(message: Message) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if message.role == "assistant":
        meta["trainable"] = message.trainable
        for key in ("untrainable_reason", "model", "stop_reason"):
            if getattr(message, key):
                meta[key] = getattr(message, key)
    if message.role == "tool" and message.is_error:
        meta["is_error"] = True
    for key in ("origin", "entry_id"):
        if getattr(message, key):
            meta[key] = getattr(message, key)
    if message.images:
        meta["images"] = message.images
    if message.tool_calls and any(c.arguments_raw is not None for c in message.tool_calls):
        meta["arguments_raw"] = {c.id: c.arguments_raw for c in message.tool_calls if c.arguments_raw is not None}
    return meta


def episode_to_wire(
    episode: Episode,
    tools: Iterable[ToolSpec] = (),
    *,
    system_prompt: str | None = None,
    include_reasoning: bool = True,
    include_meta: bool = True,
) -> dict[str, Any]:
    """The ``messages`` + ``tools`` record of ``episode``; ``system_prompt`` leads unless a system message already does."""
    messages = [message_to_wire(m, include_reasoning=include_reasoning, include_meta=include_meta) for m in episode.messages]
    if system_prompt and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": system_prompt})
    record: dict[str, Any] = {"messages": messages}
    tool_list = [t.to_openai() for t in tools]
    if tool_list:
        record["tools"] = tool_list
    if include_meta:
        record["tracetune"] = {"episode_id": episode.id, "start": episode.start}
    return record


def session_to_records(session: Session, **kwargs: Any) -> list[dict[str, Any]]:
    """One wire record per episode of ``session``, its meta naming the session, agent and source."""
    tools = kwargs.pop("tools", session.tools)
    system_prompt = kwargs.pop("system_prompt", session.system_prompt)
    records = []
    for ep in session.episodes:
        rec = episode_to_wire(ep, tools, system_prompt=system_prompt, **kwargs)
        if "tracetune" in rec:
            rec["tracetune"].update({"session_id": session.id, "agent": session.agent, "source": session.source})
        records.append(rec)
    return records


def write_jsonl(sessions: Iterable[Session], path: str, **kwargs: Any) -> int:
    """Write one line per Episode; returns the number of lines written."""
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for session in sessions:
            for record in session_to_records(session, **kwargs):
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count


class WireError(ValueError):
    """A record that is not in the messages shape; the message says where."""


def parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None, bool]:
    """Arguments as a dict, the raw text when it was not a JSON object, and whether it parsed.

    OpenAI sends arguments as a JSON string, TRL datasets often as an object.
    """
    if isinstance(raw, dict):
        return raw, None, True
    if raw is None or raw == "":
        return {}, None, True
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            return {"input": raw}, raw, False
        if isinstance(value, dict):
            return value, None, True
        return {"input": value}, raw, False
    return {"input": raw}, json.dumps(raw), False


def content_to_text(content: Any) -> tuple[str, int]:
    """Text of an OpenAI content field (string or list of parts), and how many images it held."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if isinstance(content, list):
        texts, images = [], 0
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
                texts.append(str(part.get("text", "")))
            elif isinstance(part, dict) and part.get("type") in ("image", "image_url", "input_image"):
                images += 1
                texts.append(IMAGE_PLACEHOLDER)
            elif isinstance(part, str):
                texts.append(part)
        return "\n".join(texts), images
    raise WireError(f"content must be a string or a list of parts, got {type(content).__name__}")


IMAGE_PLACEHOLDER = "[image]"


def tool_from_wire(raw: dict[str, Any]) -> ToolSpec:
    """The ``ToolSpec`` of an OpenAI tool definition (or a bare function); ``WireError`` without a name."""
    fn = raw.get("function", raw)
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise WireError("a tool needs a function with a name")
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    return ToolSpec(name=fn["name"], description=str(fn.get("description") or ""), parameters=params)


def message_from_wire(raw: dict[str, Any]) -> Message:
    """One wire message back to a ``Message`` (raises ``WireError`` naming the problem)."""
    if not isinstance(raw, dict):
        raise WireError(f"a message must be an object, got {type(raw).__name__}")
    role = raw.get("role")
    if role == "developer":
        role = "system"
    if role not in ("system", "user", "assistant", "tool"):
        raise WireError(f"unknown role {role!r}")
    text, images = content_to_text(raw.get("content"))
    meta = raw.get("tracetune") or {}
    raw_args = meta.get("arguments_raw") or {}
    calls = []
    for i, call in enumerate(raw.get("tool_calls") or []):
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise WireError(f"tool call {i} has no function name")
        args, raw_text, _ = parse_arguments(fn.get("arguments"))
        call_id = str(call.get("id") or f"call_{i}")
        calls.append(ToolCall(call_id, fn["name"], args, raw_args.get(call_id, raw_text)))
    is_assistant = role == "assistant"
    return Message(
        role=role,
        content=text,
        tool_calls=tuple(calls),
        reasoning=raw.get("reasoning_content") or raw.get("reasoning") or None,
        tool_call_id=_text_field(raw, "tool_call_id") if role == "tool" else None,
        name=_text_field(raw, "name") if role == "tool" else None,
        is_error=bool(meta.get("is_error", False)),
        trainable=bool(meta.get("trainable", True)) if is_assistant else False,
        untrainable_reason=meta.get("untrainable_reason") if is_assistant else None,
        model=meta.get("model"),
        stop_reason=meta.get("stop_reason"),
        origin=meta.get("origin"),
        images=int(meta.get("images", images)),
        entry_id=meta.get("entry_id"),
    )


def _text_field(raw: dict[str, Any], key: str) -> str | None:
    """``raw[key]`` as text: a string, an integer written out (as call ids are), or None; ``WireError`` otherwise."""
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise WireError(f"a tool result's {key} must be a string, got {type(value).__name__}")


def episode_from_wire(record: dict[str, Any], default_id: str = "record") -> tuple[Episode, tuple[ToolSpec, ...], str | None]:
    """A wire record back to ``(Episode, tools, system_prompt)``.

    A leading system message becomes the system prompt (not an Episode message),
    the inverse of ``episode_to_wire(..., system_prompt=...)``.
    """
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        raise WireError("a record needs a 'messages' list")
    messages = [message_from_wire(m) for m in record["messages"]]
    system = None
    if messages and messages[0].role == "system":
        system = messages.pop(0).content
    tools = tuple(tool_from_wire(t) for t in record.get("tools") or [])
    meta = record.get("tracetune") or {}
    episode = Episode(id=str(meta.get("episode_id", default_id)), messages=tuple(messages), start=meta.get("start", "record"))
    return episode, tools, system
