"""Codex ``response_item`` payloads -> Messages (see ``codex`` for the rules)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tracetune.conversation.types import Message, ToolCall
from tracetune.conversation.wire import WireError, content_to_text, parse_arguments
from tracetune.readers.base import WarningSink

INJECTED_PREFIXES = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions", "<turn_aborted>",
                     "<user_shell_command>")


@dataclass
class Response:
    """One model response assembled from consecutive output items."""

    entry_id: str
    model: str | None
    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)

    def message(self) -> Message:
        """The assistant message of this response; an empty one (no text, no calls) is not trainable."""
        content = "\n\n".join(t for t in self.texts if t)
        empty = not content.strip() and not self.calls
        return Message(
            role="assistant", content=content, tool_calls=tuple(self.calls),
            reasoning="\n\n".join(self.reasoning) or None, trainable=not empty,
            untrainable_reason="empty" if empty else None, model=self.model, entry_id=self.entry_id,
        )


class ItemConverter:
    #: Items the model's context holds in a form we do not render (server-side tools, snapshots).
    IGNORED = frozenset({"web_search_call", "image_generation_call", "ghost_snapshot", "compaction",
                         "tool_search_call", "tool_search_output", "other"})

    def __init__(self, sink: WarningSink):
        self.sink = sink
        self.images = 0
        self.call_names: dict[str, str] = {}

    @staticmethod
    def is_output(payload: dict[str, Any]) -> bool:
        """Whether ``payload`` is something the model produced (assistant text, reasoning or a tool call)."""
        kind = payload.get("type")
        if kind == "message":
            return payload.get("role") == "assistant"
        return kind in ("reasoning", "function_call", "custom_tool_call", "local_shell_call")

    def add_output(self, resp: Response, payload: dict[str, Any], line: int) -> None:
        """Add one output item (text, reasoning or a tool call) to the response being assembled."""
        kind = payload.get("type")
        if kind == "message":
            text, _ = self._text(payload.get("content"), line)
            resp.texts.append(text)
        elif kind == "reasoning":
            text = _reasoning_text(payload)
            if text:
                resp.reasoning.append(text)
        elif kind == "function_call":
            resp.calls.append(self._function_call(payload, line))
        elif kind == "custom_tool_call":
            raw = payload.get("input")
            raw = raw if isinstance(raw, str) else json.dumps(raw)
            resp.calls.append(self._call(payload, line, {"input": raw}, raw))
        elif kind == "local_shell_call":
            action = payload.get("action") if isinstance(payload.get("action"), dict) else {}
            resp.calls.append(self._call({**payload, "name": "local_shell"}, line, action, None))

    def _function_call(self, payload: dict[str, Any], line: int) -> ToolCall:
        args, raw, ok = parse_arguments(payload.get("arguments"))
        if not ok:
            self.sink.warn("bad_arguments", f"arguments of {payload.get('name')!r} are not a JSON object; kept as text",
                           line)
        return self._call(payload, line, args, raw)

    def _call(self, payload: dict[str, Any], line: int, args: dict[str, Any], raw: str | None) -> ToolCall:
        call_id = payload.get("call_id") or payload.get("id")
        if not isinstance(call_id, str) or not call_id:
            self.sink.warn("bad_field", "tool call without a call_id; given one from its line", line)
            call_id = f"L{line}"
        name = payload.get("name") if isinstance(payload.get("name"), str) else ""
        self.call_names[call_id] = name
        return ToolCall(call_id, name, args, arguments_raw=raw)

    def input_message(self, payload: dict[str, Any], line: int) -> Message | None:
        """The user, developer or tool result message of one input item, or None when its role is unknown."""
        kind = payload.get("type")
        if kind == "message":
            role = payload.get("role")
            text, images = self._text(payload.get("content"), line)
            if role == "user":
                origin = "injected" if text.lstrip().startswith(INJECTED_PREFIXES) else None
                return Message(role="user", content=text, origin=origin, images=images, entry_id=f"L{line}")
            if role in ("developer", "system"):
                return Message(role="user", content=text, origin="developer", images=images, entry_id=f"L{line}")
            self.sink.warn("unknown_role", f"message role {role!r}; skipped", line)
            return None
        return self._output_message(payload, line)

    def _output_message(self, payload: dict[str, Any], line: int) -> Message:
        call_id = payload.get("call_id")
        call_id = call_id if isinstance(call_id, str) else ""
        output = payload.get("output")
        is_error = False
        if isinstance(output, dict):
            is_error = output.get("success") is False
            output = output.get("content", output.get("body", output))
        if isinstance(output, (list, str)) or output is None:
            text, images = self._text(output, line)
        else:
            text, images = json.dumps(output, ensure_ascii=False), 0
        return Message(role="tool", content=text, tool_call_id=call_id, name=self.call_names.get(call_id),
                       is_error=is_error, images=images, entry_id=f"L{line}")

    def _text(self, content: Any, line: int) -> tuple[str, int]:
        try:
            text, images = content_to_text(content)
        except WireError as exc:
            self.sink.warn("bad_field", f"{exc}; kept as JSON text", line)
            return json.dumps(content, ensure_ascii=False), 0
        self.images += images
        return text, images


def _reasoning_text(payload: dict[str, Any]) -> str:
    for key, part_type in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = payload.get(key)
        if isinstance(parts, list):
            texts = [str(p.get("text") or "") for p in parts if isinstance(p, dict) and p.get("type") == part_type]
            if any(texts):
                return "\n\n".join(t for t in texts if t)
    return ""
