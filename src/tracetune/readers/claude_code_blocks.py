"""Claude Code content blocks -> Messages along one path (see ``claude_code``).

A path is a list of tree nodes from a root to a leaf. Assistant lines sharing
``message.id`` merge into one assistant message; tool results written between
its parts follow it; results found on a sibling branch are spliced in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tracetune.conversation.types import Message, ToolCall
from tracetune.conversation.wire import IMAGE_PLACEHOLDER
from tracetune.readers.base import WarningSink
from tracetune.readers.tool_pairing import pair_tool_results

SERVER_BLOCKS = frozenset({"server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
                           "code_execution_tool_result", "mcp_tool_use", "mcp_tool_result"})
COMMAND_MARKERS = ("<command-name>", "<command-message>", "<local-command-stdout>", "<local-command-stderr>",
                   "<local-command-caveat>", "<bash-input>", "<bash-stdout>", "<bash-stderr>")
INTERRUPT_PREFIX = "[Request interrupted by user"


@dataclass
class Node:
    uuid: str
    parent: str | None
    line: int
    kind: str  # "user" | "assistant" | "boundary" | "other"
    raw: dict[str, Any]
    sidechain: bool
    children: list[str] = field(default_factory=list)

    @property
    def carries_messages(self) -> bool:
        """Whether this node yields messages on a path (a user or assistant line, or a compaction boundary)."""
        return self.kind in ("user", "assistant", "boundary")


class Converter:
    """Converts each entry once, however many paths hold it; tallies images and ignored blocks.

    ``call_names`` maps every tool_use id in the file to its tool name, so
    result messages carry the name without depending on the path.
    """

    def __init__(self, ignored: dict[str, int], sink: WarningSink, call_names: dict[str, str]):
        self.ignored, self.sink, self.call_names = ignored, sink, call_names
        self.images = 0
        self._users: dict[str, tuple[list[Message], list[Message]]] = {}
        self._responses: dict[tuple[str, ...], Message] = {}
        self._counted: set[str] = set()

    def user(self, node: Node) -> tuple[list[Message], list[Message]]:
        """(tool result messages, other user messages) of the user line ``node``, converted once and cached."""
        if node.uuid not in self._users:
            self._users[node.uuid] = user_messages(node, self)
        return self._users[node.uuid]

    def response(self, nodes: tuple[Node, ...]) -> Message:
        """The one assistant message merged from the lines of a response, converted once and cached."""
        key = tuple(n.uuid for n in nodes)
        if key not in self._responses:
            first = nodes[0]
            msg = first.raw["message"]
            model = msg.get("model") if isinstance(msg.get("model"), str) else None
            synthetic = bool(first.raw.get("isApiErrorMessage")) or model == "<synthetic>"
            resp = _Response(entry_id=first.uuid, model=model, synthetic=synthetic)
            for node in nodes:
                add_assistant_blocks(resp, node, self, count=node.uuid not in self._counted)
                self._counted.add(node.uuid)
            self._responses[key] = resp.message()
        return self._responses[key]


def call_names(nodes) -> dict[str, str]:
    """tool_use id -> tool name, over every assistant entry of the file."""
    names: dict[str, str] = {}
    for node in nodes:
        content = node.raw["message"].get("content") if node.kind == "assistant" else None
        for block in content if isinstance(content, list) else []:
            if _block_type(block) == "tool_use" and isinstance(block.get("name"), str):
                names.setdefault(str(block.get("id")), block["name"])
    return names


def result_ids(raw: dict[str, Any]) -> list[str]:
    """The ``tool_use_id`` of each ``tool_result`` block in the user entry ``raw``."""
    content = (raw.get("message") or {}).get("content")
    if not isinstance(content, list):
        return []
    return [str(b.get("tool_use_id")) for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


@dataclass
class _Response:
    """One model response being assembled from several assistant lines."""

    entry_id: str
    model: str | None
    texts: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str | None = None
    synthetic: bool = False

    def message(self) -> Message:
        content = "\n\n".join(t for t in self.texts if t)
        reason = None
        if self.synthetic:
            reason = "error"
        elif not content.strip() and not self.calls:
            reason = "empty"
        return Message(
            role="assistant", content=content, tool_calls=tuple(self.calls),
            reasoning="\n\n".join(self.thinking) or None, trainable=reason is None, untrainable_reason=reason,
            model=None if self.synthetic else self.model, stop_reason=self.stop_reason, entry_id=self.entry_id,
        )


class _PathBuilder:
    def __init__(self, on_path, results, spliced, conv: Converter):
        self.on_path, self.results, self.spliced, self.conv = on_path, results, spliced, conv
        self.out: list[Message] = []
        self.group: list[Node] = []
        self.key: str | None = None
        self.pending: list[Message] = []

    def add(self, node: Node) -> None:
        if node.kind == "assistant":
            key = str(node.raw["message"].get("id") or node.uuid)
            if key != self.key:
                self.flush()
                self.key = key
            self.group.append(node)
        elif node.kind == "user":
            tools, others = self.conv.user(node)
            if self.group:
                self.pending.extend(tools)
            else:
                self.out.extend(tools)
            if others:
                self.flush()
                self.out.extend(others)

    def flush(self) -> None:
        if not self.group:
            return
        message = self.conv.response(tuple(self.group))
        answered = {m.tool_call_id for m in self.pending}
        for call in message.tool_calls:
            holder = self.results.get(call.id)
            if call.id in answered or holder is None or holder.uuid in self.on_path:
                continue
            tools, _ = self.conv.user(holder)
            self.pending.extend(t for t in tools if t.tool_call_id == call.id)
            self.spliced.add(holder.uuid)
        if len(self.pending) > 1:
            order = {call.id: i for i, call in enumerate(message.tool_calls)}
            self.pending.sort(key=lambda m: order.get(m.tool_call_id or "", len(order)))
        self.out.append(message)
        self.out.extend(self.pending)
        self.group, self.key, self.pending = [], None, []


def path_messages(path, on_path, results, spliced, conv: Converter) -> list[Message]:
    """The messages along ``path``, split responses merged and each tool result right after its call."""
    builder = _PathBuilder(on_path, results, spliced, conv)
    for node in path:
        builder.add(node)
    builder.flush()
    return pair_tool_results(builder.out, conv.sink)


def add_assistant_blocks(resp: _Response, node: Node, conv: Converter, count: bool) -> None:
    """Add the text, thinking and tool calls of one assistant line to ``resp``; tally ignored blocks when ``count``."""
    sink = conv.sink
    msg = node.raw["message"]
    content = msg.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        sink.warn("bad_field", "assistant content is neither text nor a list of blocks", node.line)
        return
    for block in content:
        kind = _block_type(block)
        if kind == "text":
            resp.texts.append(str(block.get("text") or ""))
        elif kind == "thinking":
            if block.get("thinking"):
                resp.thinking.append(str(block["thinking"]))
        elif kind == "tool_use":
            resp.calls.append(_tool_call(block, node, sink))
        elif kind == "redacted_thinking" or kind in SERVER_BLOCKS:
            if count:
                conv.ignored[kind] = conv.ignored.get(kind, 0) + 1
        else:
            sink.warn("unknown_block", f"assistant block of type {kind!r}; skipped", node.line)
    if msg.get("stop_reason"):
        resp.stop_reason = str(msg["stop_reason"])


def _tool_call(block: dict[str, Any], node: Node, sink: WarningSink) -> ToolCall:
    call_id = str(block.get("id") or f"{node.uuid}:call")
    name = str(block.get("name") or "")
    args = block.get("input")
    if isinstance(args, dict):
        return ToolCall(call_id, name, args)
    raw = args if isinstance(args, str) else json.dumps(args)
    sink.warn("bad_arguments", f"tool_use {call_id} input is not an object; kept as text", node.line)
    return ToolCall(call_id, name, {"input": args}, arguments_raw=raw)


def user_messages(node: Node, conv: Converter) -> tuple[list[Message], list[Message]]:
    """(tool result messages, other user messages) of one user line."""
    sink = conv.sink
    raw = node.raw
    content = raw["message"].get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        sink.warn("bad_field", "user content is neither text nor a list of blocks", node.line)
        return [], []
    tools: list[Message] = []
    texts: list[str] = []
    images = 0
    for block in content:
        kind = _block_type(block)
        if kind == "tool_result":
            text, n = _result_text(block.get("content"))
            images += n
            call_id = str(block.get("tool_use_id"))
            tools.append(Message(role="tool", content=text, tool_call_id=call_id, name=conv.call_names.get(call_id),
                                 is_error=bool(block.get("is_error")), images=n, entry_id=node.uuid))
        elif kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind in ("image", "document"):
            images += 1
            texts.append(IMAGE_PLACEHOLDER)
        elif isinstance(block, str):
            texts.append(block)
        else:
            sink.warn("unknown_block", f"user block of type {kind!r}; skipped", node.line)
    conv.images += images
    others = []
    if texts:
        text = "\n".join(texts)
        others.append(Message(role="user", content=text, origin=_origin(raw, text), entry_id=node.uuid,
                              images=images - sum(t.images for t in tools)))
    return tools, others


def _block_type(block: Any) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    return kind if isinstance(kind, str) else None


def _origin(raw: dict[str, Any], text: str) -> str | None:
    if raw.get("isCompactSummary"):
        return "compactionSummary"
    if raw.get("isMeta"):
        return "meta"
    stripped = text.lstrip()
    if stripped.startswith(COMMAND_MARKERS):
        return "command"
    if stripped.startswith(INTERRUPT_PREFIX):
        return "interrupt"
    if stripped.startswith("<system-reminder>") and text.rstrip().endswith("</system-reminder>"):
        return "systemReminder"
    return None


def _result_text(content: Any) -> tuple[str, int]:
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return json.dumps(content, ensure_ascii=False), 0
    parts, images = [], 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append(str(part.get("text") or ""))
        elif kind in ("image", "document"):
            images += 1
            parts.append(IMAGE_PLACEHOLDER)
        elif kind == "tool_reference":
            parts.append(f"[tool loaded: {part.get('tool_name')}]")
        elif isinstance(part, str):
            parts.append(part)
        else:
            parts.append(json.dumps(part, ensure_ascii=False))
    return "\n".join(parts), images
