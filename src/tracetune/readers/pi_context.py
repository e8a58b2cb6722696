"""pi entries to model-visible Messages, following pi's ``convertToLlm``.

The rules of ``dist/core/messages.js`` and ``buildSessionContext``:

- ``user`` / ``assistant`` / ``toolResult`` messages pass through (as
  ``user`` / ``assistant`` / ``tool``);
- ``bashExecution`` becomes a user message with ``bashExecutionToText``'s
  text, unless ``excludeFromContext`` (pi's ``!!`` commands): then it is not
  in the context at all;
- ``custom`` messages and ``custom_message`` entries become user messages;
- ``branch_summary`` entries (with a non-empty summary) and compaction
  summaries become user messages wrapped in pi's exact prefix and suffix;
- ``label``, ``session_info``, ``custom``, ``model_change`` and
  ``thinking_level_change`` entries are not messages.

Text joining (our choice, documented because pi keeps content as blocks):
the non-empty text blocks of one message are joined with ``"\\n"`` in order;
each image block leaves ``[image]`` at its place and is counted in
``Message.images``; thinking blocks become ``reasoning`` (joined the same
way); tool calls keep their id, name and arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracetune.conversation.types import Message, ToolCall, UntrainableReason
from tracetune.conversation.wire import IMAGE_PLACEHOLDER, parse_arguments
from tracetune.readers.base import WarningSink
from tracetune.readers.pi_entries import Entry

COMPACTION_SUMMARY_PREFIX = (
    "The conversation history before this point was compacted into the following summary:\n\n<summary>\n"
)
COMPACTION_SUMMARY_SUFFIX = "\n</summary>"
BRANCH_SUMMARY_PREFIX = "The following is a summary of a branch that this conversation came back from:\n\n<summary>\n"
BRANCH_SUMMARY_SUFFIX = "</summary>"

#: Entry types that carry no model-visible message (counted in ``SessionStats.ignored``).
NON_MESSAGE_TYPES = frozenset({"label", "session_info", "custom", "model_change", "thinking_level_change"})
KNOWN_TYPES = NON_MESSAGE_TYPES | {"message", "custom_message", "branch_summary", "compaction"}
EXCLUDED_BASH = "bashExecution (excludeFromContext)"


@dataclass(frozen=True)
class Converted:
    """What one entry contributes: a message or nothing, and why nothing."""

    message: Message | None
    ignored_as: str | None = None  # counted in stats.ignored under this name


def join_text(parts: list[str]) -> str:
    """The non-empty ``parts`` joined by newlines."""
    return "\n".join(p for p in parts if p)


def blocks_to_text(content: Any, sink: WarningSink, line: int) -> tuple[str, int]:
    """Text of a user-like ``content`` (a string or text/image blocks) and its image count."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        if content is not None:
            sink.warn("bad_field", f"content is a {type(content).__name__}, not text or blocks", line)
        return "", 0
    parts: list[str] = []
    images = 0
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(_text(block.get("text")))
        elif kind == "image":
            images += 1
            parts.append(IMAGE_PLACEHOLDER)
        else:
            sink.warn("unknown_block", f"content block of type {kind!r} skipped", line)
    return join_text(parts), images


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def bash_execution_text(msg: dict[str, Any]) -> str:
    """pi's ``bashExecutionToText``."""
    text = f"Ran `{_text(msg.get('command'))}`\n"
    output = msg.get("output")
    text += f"```\n{_text(output)}\n```" if output else "(no output)"
    code = msg.get("exitCode")
    if msg.get("cancelled"):
        text += "\n\n(command cancelled)"
    elif code is not None and code != 0:
        text += f"\n\nCommand exited with code {code}"
    if msg.get("truncated") and msg.get("fullOutputPath"):
        text += f"\n\n[Output truncated. Full output: {_text(msg.get('fullOutputPath'))}]"
    return text


def compaction_summary(entry: Entry) -> Message:
    """The user message pi puts in the context for a compaction entry: its summary in ``<summary>`` tags."""
    text = COMPACTION_SUMMARY_PREFIX + _text(entry.raw.get("summary")) + COMPACTION_SUMMARY_SUFFIX
    return Message(role="user", content=text, origin="compactionSummary", entry_id=entry.id)


def convert_entry(entry: Entry, sink: WarningSink, model: str | None = None) -> Converted:
    """The message one entry puts into the context (``model``: fallback teacher id)."""
    if entry.type == "message":
        msg = entry.message
        if msg is None:
            sink.warn("bad_field", "message entry without a message object; skipped", entry.line)
            return Converted(None)
        return _convert_message(entry, msg, sink, model)
    if entry.type == "custom_message":
        text, images = blocks_to_text(entry.raw.get("content"), sink, entry.line)
        return Converted(Message(role="user", content=text, images=images, origin="custom", entry_id=entry.id))
    if entry.type == "branch_summary":
        summary = entry.raw.get("summary")
        if not summary:
            return Converted(None, ignored_as="branch_summary (empty)")
        text = BRANCH_SUMMARY_PREFIX + _text(summary) + BRANCH_SUMMARY_SUFFIX
        return Converted(Message(role="user", content=text, origin="branchSummary", entry_id=entry.id))
    if entry.type in NON_MESSAGE_TYPES:
        return Converted(None, ignored_as=entry.type)
    if entry.type and entry.type != "compaction":
        sink.warn("unknown_entry", f"entry type {entry.type!r} is not a pi entry; kept in the tree, no message", entry.line)
    return Converted(None)


def _convert_message(entry: Entry, msg: dict[str, Any], sink: WarningSink, model: str | None) -> Converted:
    role = msg.get("role")
    line, eid = entry.line, entry.id
    if role == "user":
        text, images = blocks_to_text(msg.get("content"), sink, line)
        return Converted(Message(role="user", content=text, images=images, entry_id=eid))
    if role == "assistant":
        return Converted(assistant_message(entry, msg, sink, model))
    if role == "toolResult":
        text, images = blocks_to_text(msg.get("content"), sink, line)
        return Converted(
            Message(
                role="tool",
                content=text,
                images=images,
                tool_call_id=_text(msg.get("toolCallId")),
                name=_text(msg.get("toolName")) or None,
                is_error=bool(msg.get("isError")),
                entry_id=eid,
            )
        )
    if role == "bashExecution":
        if msg.get("excludeFromContext"):
            return Converted(None, ignored_as=EXCLUDED_BASH)
        return Converted(Message(role="user", content=bash_execution_text(msg), origin="bashExecution", entry_id=eid))
    if role == "custom":
        text, images = blocks_to_text(msg.get("content"), sink, line)
        return Converted(Message(role="user", content=text, images=images, origin="custom", entry_id=eid))
    if role in ("branchSummary", "compactionSummary"):
        prefix, suffix = (
            (BRANCH_SUMMARY_PREFIX, BRANCH_SUMMARY_SUFFIX)
            if role == "branchSummary"
            else (COMPACTION_SUMMARY_PREFIX, COMPACTION_SUMMARY_SUFFIX)
        )
        text = prefix + _text(msg.get("summary")) + suffix
        return Converted(Message(role="user", content=text, origin=role, entry_id=eid))
    sink.warn("unknown_role", f"message role {role!r} is not one pi sends to a model; skipped", line)
    return Converted(None)


def message_model(msg: dict[str, Any]) -> str | None:
    """``provider/model`` of a pi message (just the model without a provider), or None."""
    provider, model = msg.get("provider"), msg.get("model")
    if isinstance(model, str) and model:
        return f"{provider}/{model}" if isinstance(provider, str) and provider else model
    return None


def assistant_message(entry: Entry, msg: dict[str, Any], sink: WarningSink, model: str | None) -> Message:
    """The assistant ``Message`` of a pi entry; untrainable when aborted, failed or empty."""
    content = msg.get("content")
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for block in content:
            _assistant_block(block, texts, thoughts, calls, sink, entry.line)
    elif content is not None:
        sink.warn("bad_field", f"assistant content is a {type(content).__name__}", entry.line)
    text = join_text(texts)
    stop = msg.get("stopReason")
    stop = stop if isinstance(stop, str) else None
    reason = untrainable_reason(stop, text, calls)
    return Message(
        role="assistant",
        content=text,
        tool_calls=tuple(calls),
        reasoning=join_text(thoughts) or None,
        trainable=reason is None,
        untrainable_reason=reason,
        model=message_model(msg) or model,
        stop_reason=stop,
        entry_id=entry.id,
    )


def untrainable_reason(stop: str | None, text: str, calls: list[ToolCall]) -> UntrainableReason | None:
    """Why an assistant turn with this stop reason, text and calls cannot be trained on, or None."""
    if stop == "aborted":
        return "aborted"
    if stop == "error":
        return "error"
    if not text.strip() and not calls:
        return "empty"
    return None


def _assistant_block(block: Any, texts: list, thoughts: list, calls: list, sink: WarningSink, line: int) -> None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        texts.append(_text(block.get("text")))
    elif kind == "thinking":
        if not block.get("redacted"):
            thoughts.append(_text(block.get("thinking")))
    elif kind == "toolCall":
        raw_args = block.get("arguments")
        args, raw_text, ok = parse_arguments(raw_args)
        if not ok or not isinstance(raw_args, (dict, type(None))):
            sink.warn("bad_arguments", f"tool call arguments are not a JSON object ({type(raw_args).__name__})", line)
        calls.append(ToolCall(_text(block.get("id")), _text(block.get("name")), args, raw_text))
    else:
        sink.warn("unknown_block", f"assistant block of type {kind!r} skipped", line)
