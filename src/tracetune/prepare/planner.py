"""Token counts that plan a Conversation's windows before any is rendered.

``Planner`` knows what each message costs and what a window starting at a given
message would cost, head included. Exact when the Episode rendered once
(``pieces.RenderedEpisode``); otherwise each message is tokenized alone plus a
measured template overhead, an estimate that rendering the window then checks.
It also builds the messages a window renders: the head (system prompt, tools,
the task's first user message, clipped) and a marker for the messages left out.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from tracetune.prepare.conversations import Conversation, clip_text
from tracetune.prepare.render import apply_template

MARKER = "[... {n} earlier messages omitted ...]"
#: Per-text character limits tried, in order, on a window's context when a turn does not fit otherwise.
SQUEEZE_LEVELS = (2000, 800, 300)


#: Tokens of the omitted-messages marker and the blank lines around it, with the head's user text.
MARKER_TOKENS = 12


class Planner:
    """Token counts for one Conversation: exact from its pieces when it renders once, else estimates.

    With ``rendered`` (``pieces.RenderedEpisode``) a window of whole segments is
    counted exactly and rendered from the pieces; without it each message is
    tokenized once as an estimate and windows go through ``render_conversation``.
    """

    def __init__(self, tokenizer, conv: Conversation, head_user_chars: int, marker: bool, rendered=None):
        self.tok = tokenizer
        self.conv = conv
        self.marker = marker
        self.rendered = rendered
        msgs = conv.messages
        self.first_user = next((i for i, m in enumerate(msgs) if m["role"] == "user"), None)
        self.overhead = _per_message_overhead(tokenizer)
        if rendered is not None:
            self.costs = rendered.message_costs()
            self.base = rendered.head_tokens
        else:
            texts = [_message_text(m) for m in msgs]
            lengths = _token_lengths(tokenizer, texts) if texts else []
            self.costs = [n + self.overhead for n in lengths]
            self.base = _head_cost(tokenizer, conv)
        self.cum = [0, *accumulate(self.costs)]
        self.head_user = None
        if self.first_user is not None:
            text = msgs[self.first_user]["content"] or ""
            self.head_user = window_task(text, head_user_chars)
        self.head_cost = self.base + (_token_lengths(tokenizer, [self.head_user])[0] + self.overhead + MARKER_TOKENS if self.head_user else 0)

    def cost(self, start: int, end: int) -> int:
        """Estimated tokens of a window rendering messages[start..end] (inclusive), head included."""
        head = self.base if self.natural(start) else self.head_cost
        return head + self.cum[end + 1] - self.cum[start]

    def natural(self, start: int) -> bool:
        """Whether a window starting at message ``start`` holds the first user message, so needs no synthetic head."""
        return natural_start(self.first_user, start)

    def boundaries_before(self, t: int) -> list[int]:
        """Valid window starts before ``t``, nearest first."""
        return [j for j in range(t - 1, -1, -1) if self.conv.messages[j]["role"] in ("user", "assistant")]

    def window_messages(
        self, start: int, end: int, squeeze: int | None = None, first_target: int | None = None
    ) -> tuple[list[dict[str, Any]], list[int]]:
        """The messages a window renders (system included) and, for each, its index in the Conversation (-1: synthetic).

        With ``squeeze``, the context before ``first_target`` (tool results, earlier
        tool-call arguments, the head) is clipped to that many characters per text.
        """
        body, index = window_body(self.conv.messages, self.first_user, start, end, self.head_user,
                                  marker=self.marker, squeeze=squeeze, first_target=first_target)
        with_system = self.conv.with_system(body)
        index = [-1] * (len(with_system) - len(body)) + index
        return with_system, index


def window_body(
    messages: list[dict[str, Any]], first_user: int | None, start: int, end: int, head_user: str | None, *,
    marker: bool = True, squeeze: int | None = None, first_target: int | None = None,
) -> tuple[list[dict[str, Any]], list[int]]:
    """A window over ``messages[start..end]`` (no system prompt) and each message's index in ``messages`` (-1: synthetic).

    A window that starts after the first user message (``first_user``) opens with ``head_user``
    (the task as ``window_task`` clips it) and, with ``marker``, a note of how many messages it
    leaves out, merged into its first message when that is a user message. With ``squeeze``, the
    context before ``first_target`` and the repeated task are clipped to that many characters per
    text. Training windows (``Planner``) and eval's held-out contexts are both built here.
    """
    msgs = list(messages)
    if squeeze is not None and first_target is not None:
        msgs[start:first_target] = [squeeze_message(m, squeeze) for m in msgs[start:first_target]]
    if squeeze is not None and head_user:
        head_user = clip_text(head_user, squeeze)[0]
    if natural_start(first_user, start):
        return list(msgs[: end + 1]), list(range(end + 1))
    omitted = start - (first_user + 1) if first_user is not None else start
    note = MARKER.format(n=omitted) if marker else ""
    head_text = "\n\n".join(x for x in (head_user, note) if x)
    if msgs[start]["role"] == "user":
        merged = {"role": "user", "content": head_text + "\n\n" + (msgs[start]["content"] or "")}
        return [merged, *msgs[start + 1 : end + 1]], [-1, *range(start + 1, end + 1)]
    body = ([{"role": "user", "content": head_text}] if head_text else []) + list(msgs[start : end + 1])
    return body, ([-1] if head_text else []) + list(range(start, end + 1))


def natural_start(first_user: int | None, start: int) -> bool:
    """Whether a window starting at message ``start`` holds the first user message, so needs no synthetic head."""
    return start == 0 or (first_user is not None and start <= first_user)


def window_task(text: str, limit: int) -> str:
    """The task (first user message) as a window's head repeats it: its first ``limit`` characters, marked when cut."""
    return text[:limit] + ("\n[...]" if len(text) > limit else "")


def squeeze_message(m: dict[str, Any], limit: int) -> dict[str, Any]:
    """A context message with every long text (content, tool-call string arguments) clipped to ``limit``."""
    out = dict(m)
    if isinstance(m.get("content"), str):
        out["content"] = clip_text(m["content"], limit)[0]
    if m.get("tool_calls"):
        calls = []
        for call in m["tool_calls"]:
            fn = dict(call.get("function", {}))
            args = fn.get("arguments")
            if isinstance(args, dict):
                fn["arguments"] = {k: clip_text(v, limit)[0] if isinstance(v, str) else v for k, v in args.items()}
            calls.append({**call, "function": fn})
        out["tool_calls"] = calls
    return out


def _message_text(m: dict[str, Any]) -> str:
    parts = [m.get("content") or "", m.get("reasoning_content") or ""]
    for call in m.get("tool_calls") or []:
        fn = call.get("function", {})
        parts.append(f'{{"name": "{fn.get("name")}", "arguments": {_json(fn.get("arguments"))}}}')
    return "\n".join(p for p in parts if p)


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _token_lengths(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]


#: Template tokens around one message when the template cannot render the probe below (a template that
#: refuses a conversation without a system prompt, say): ChatML's role header and end-of-turn take 5, others
#: a few more. Only planning uses it; every window's exact length comes from rendering it.
FALLBACK_MESSAGE_OVERHEAD = 8


def _per_message_overhead(tokenizer) -> int:
    """Template tokens around one message (role header, end-of-turn), measured on a tiny conversation."""
    from jinja2 import TemplateError

    short = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    try:
        one, two = _token_lengths(tokenizer, [apply_template(tokenizer, short[:1], None), apply_template(tokenizer, short, None)])
    except (TemplateError, ValueError):
        return FALLBACK_MESSAGE_OVERHEAD
    return max(2, two - one)


def _head_cost(tokenizer, conv: Conversation) -> int:
    """Tokens of the system prompt and tool definitions as the template renders them.

    0 when the template refuses the probe (one user message): plans then leave the head out, and
    rendering still gives each window's exact length (a window that comes out too long gives back targets).
    """
    from jinja2 import TemplateError

    probe = [{"role": "user", "content": "a"}]
    try:
        with_head = apply_template(tokenizer, conv.with_system(probe), conv.tools or None)
        bare = apply_template(tokenizer, probe, None)
    except (TemplateError, ValueError):
        return 0
    head, body = _token_lengths(tokenizer, [with_head, bare])
    return max(0, head - body)
