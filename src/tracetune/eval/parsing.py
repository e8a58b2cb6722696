"""Turn a model's raw output into an assistant ``Message``, or say why it cannot.

Two routes, tried in order:

1. The tokenizer's own ``response_template`` (transformers 5 ``parse_response``),
   when the student carries one: the parser then follows exactly the markers its
   chat template writes.
2. Known conventions, for tokenizers without one: Hermes/Qwen
   ``<tool_call>{json}</tool_call>`` blocks, Mistral ``[TOOL_CALLS][...]``,
   Llama 3 ``<|python_tag|>{json}``, and a bare JSON call object (optionally in a
   code fence) as the whole output. ``<think>...</think>`` becomes reasoning.

Parsing never raises. A failure gives ``message=None`` and a short kind:

- ``invalid_json``: a tool-call body is not valid JSON
- ``unclosed_tool_call``: an opening marker without its closing one
- ``missing_name``: a call object without a string ``name``
- ``bad_arguments``: ``arguments`` is neither an object nor a JSON-object string
- ``template_error``: the response template rejected the output for another reason
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from tracetune.conversation.types import Message, ToolCall

ParseErrorKind = Literal["invalid_json", "unclosed_tool_call", "missing_name", "bad_arguments", "template_error"]

END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "</s>", "<end_of_turn>")
THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)
HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
MISTRAL_MARK = "[TOOL_CALLS]"
LLAMA_MARK = "<|python_tag|>"
FENCE_RE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True)
class ParseResult:
    message: Message | None
    error: ParseErrorKind | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a message was parsed."""
        return self.message is not None


class _Failure(Exception):
    def __init__(self, kind: ParseErrorKind, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def parse_output(raw: str, tokenizer: Any = None, prefix: str = "", tools: list[dict] | None = None) -> ParseResult:
    """Parse ``raw`` with the tokenizer's response template if it has one, else by convention."""
    template = getattr(tokenizer, "response_template", None) if tokenizer is not None else None
    if template:
        return _parse_with_template(raw, tokenizer, prefix, tools)
    extra_markers = _special_end_markers(tokenizer)
    try:
        return ParseResult(_parse_conventions(raw, extra_markers))
    except _Failure as failure:
        return ParseResult(None, failure.kind, failure.detail)


def _parse_with_template(raw: str, tokenizer: Any, prefix: str, tools: list[dict] | None) -> ParseResult:
    try:
        parsed = tokenizer.parse_response(raw, prefix=prefix, tools=tools or None)
    except Exception as exc:  # noqa: BLE001 - the template parser raises plain ValueErrors; classify below
        try:
            _parse_conventions(raw, _special_end_markers(tokenizer))
        except _Failure as failure:
            return ParseResult(None, failure.kind, failure.detail)
        kind: ParseErrorKind = "invalid_json" if "JSON" in str(exc) else "template_error"
        return ParseResult(None, kind, str(exc).splitlines()[0][:200])
    if not _markers_balanced(raw, tokenizer.response_template):
        return ParseResult(None, "unclosed_tool_call", "tool-call open and close markers do not pair up")
    try:
        return ParseResult(message_from_parsed(parsed))
    except _Failure as failure:
        return ParseResult(None, failure.kind, failure.detail)


def _markers_balanced(raw: str, template: dict[str, Any]) -> bool:
    """The template parser closes a region at the end of the text; we want both markers written."""
    field = (template.get("fields") or {}).get("tool_calls") or {}
    opens, closes = _anchor(field, "open"), _anchor(field, "close")
    if opens is None or closes is None:
        return True
    return len(opens.findall(raw)) == len(closes.findall(raw))


def _anchor(field: dict[str, Any], key: str) -> re.Pattern | None:
    if f"{key}_pattern" in field:
        try:
            return re.compile(field[f"{key}_pattern"], re.DOTALL)
        except re.error:
            return None
    literal = field.get(key)
    if isinstance(literal, str):
        literal = [literal]
    if isinstance(literal, list) and literal:
        return re.compile("|".join(re.escape(x) for x in literal))
    return None


def message_from_parsed(parsed: dict[str, Any]) -> Message:
    """A ``parse_response`` dict (OpenAI message shape) to a ``Message``; raises ``_Failure``."""
    calls = tuple(_call_from_object(tc.get("function", tc) if isinstance(tc, dict) else tc, i)
                  for i, tc in enumerate(parsed.get("tool_calls") or []))
    content = parsed.get("content") or ""
    reasoning = parsed.get("reasoning_content") or parsed.get("thinking") or None
    return Message(role="assistant", content=str(content).strip(), tool_calls=calls, reasoning=reasoning)


def _special_end_markers(tokenizer: Any) -> tuple[str, ...]:
    if tokenizer is None:
        return ()
    tokens = [getattr(tokenizer, "eos_token", None), getattr(tokenizer, "pad_token", None)]
    return tuple(t for t in tokens if isinstance(t, str) and t)


def strip_end_markers(text: str, extra: tuple[str, ...] = ()) -> str:
    """Cut the text at the first end-of-turn marker."""
    cut = len(text)
    for marker in END_MARKERS + extra:
        pos = text.find(marker)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]


def _parse_conventions(raw: str, extra_markers: tuple[str, ...] = ()) -> Message:
    text = strip_end_markers(raw, extra_markers)
    reasoning = None
    think = THINK_RE.search(text)
    if think:
        reasoning = think.group(1).strip() or None
        text = text[: think.start()] + text[think.end():]
    if HERMES_OPEN in text or HERMES_CLOSE in text:
        content, calls = _parse_hermes(text)
    elif MISTRAL_MARK in text:
        content, calls = _parse_marked_list(text, MISTRAL_MARK)
    elif LLAMA_MARK in text:
        content, calls = _parse_marked_list(text, LLAMA_MARK)
    else:
        content, calls = _parse_bare(text)
    return Message(role="assistant", content=content.strip(), tool_calls=calls, reasoning=reasoning)


def _parse_hermes(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    content_parts: list[str] = []
    calls: list[ToolCall] = []
    rest = text
    while True:
        start = rest.find(HERMES_OPEN)
        stray_close = rest.find(HERMES_CLOSE)
        if stray_close != -1 and (start == -1 or stray_close < start):
            raise _Failure("unclosed_tool_call", "a </tool_call> without its <tool_call>")
        if start == -1:
            content_parts.append(rest)
            break
        content_parts.append(rest[:start])
        end = rest.find(HERMES_CLOSE, start)
        if end == -1:
            raise _Failure("unclosed_tool_call", "a <tool_call> without its </tool_call>")
        body = rest[start + len(HERMES_OPEN): end]
        calls.append(_call_from_object(_load_json(body), len(calls)))
        rest = rest[end + len(HERMES_CLOSE):]
    return "".join(content_parts), tuple(calls)


def _parse_marked_list(text: str, marker: str) -> tuple[str, tuple[ToolCall, ...]]:
    content, _, body = text.partition(marker)
    value = _load_json(body)
    items = value if isinstance(value, list) else [value]
    return content, tuple(_call_from_object(item, i) for i, item in enumerate(items))


def _parse_bare(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """A whole output that is one JSON call object (some models answer this way)."""
    stripped = text.strip()
    fenced = FENCE_RE.match(stripped)
    candidate = fenced.group(1) if fenced else stripped
    if not (candidate.startswith("{") and candidate.endswith("}")):
        return text, ()
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError:
        return text, ()
    if isinstance(value, dict) and isinstance(value.get("name"), str) and ("arguments" in value or "parameters" in value):
        return "", (_call_from_object(value, 0),)
    return text, ()


def _load_json(body: str) -> Any:
    try:
        return json.loads(body.strip())
    except json.JSONDecodeError as exc:
        raise _Failure("invalid_json", f"tool call body is not JSON: {exc.msg} at char {exc.pos}") from None


def _call_from_object(value: Any, index: int) -> ToolCall:
    if not isinstance(value, dict):
        raise _Failure("missing_name", f"tool call {index} is a {type(value).__name__}, not an object")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Failure("missing_name", f"tool call {index} has no name")
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            raise _Failure("bad_arguments", f"arguments of {name!r} are a string that is not JSON") from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _Failure("bad_arguments", f"arguments of {name!r} are a {type(args).__name__}, not an object")
    return ToolCall(id=str(value.get("id") or f"call_{index}"), name=name.strip(), arguments=args)
