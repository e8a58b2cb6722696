"""Examples from a Conversation: whole trajectories (windowed when too long) or one per turn.

``trajectory``: one example per Episode with every target turn supervised in
one pass. An Episode longer than ``max_length`` is cut into windows. A window
starts at a turn boundary (a user or assistant message, never a tool result
without its call), repeats some earlier turns as context (up to
``window_context`` of the budget), and supervises the target turns that follow
until the budget is spent; the next window starts before the first target not
yet supervised. A window that does not start at the beginning carries a head:
the system prompt, the tools and the task's first user message (clipped),
with a marker saying how many messages were left out. Each target turn is
supervised in exactly one example; one that cannot fit even alone is dropped
as ``too_long``.

``per-turn``: one example per target turn, its history re-rendered each time
(only the last ``per_turn_history`` messages, when set), dropped as
``too_long`` when it does not fit. This is the reference recipe's way, kept
for comparison.

Lengths are planned with per-message token estimates and checked on the real
rendering; a window that comes out too long gives back its last target.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from tracetune.prepare.conversations import Conversation, clip_text
from tracetune.prepare.render import RenderedExample, apply_template, render_conversation

MARKER = "[... {n} earlier messages omitted ...]"
#: Per-text character limits tried, in order, on a window's context when a turn does not fit otherwise.
SQUEEZE_LEVELS = (2000, 800, 300)


@dataclass(frozen=True)
class Example:
    rendered: RenderedExample
    window: int
    messages: tuple[dict[str, Any], ...]  # exactly what was rendered, system prompt included
    targets: tuple[int, ...]  # indices into Conversation.messages
    fallback: bool = False


@dataclass
class EpisodeExamples:
    examples: list[Example] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # reason -> target turns
    fallback_turns: int = 0
    windowed: bool = False
    squeezed_windows: int = 0
    prefix_tokens: int = 0  # system prompt + tool definitions, as the template renders them


class Planner:
    """Token estimates for one Conversation (cheap: each message tokenized once)."""

    def __init__(self, tokenizer, conv: Conversation, head_user_chars: int, marker: bool):
        self.tok = tokenizer
        self.conv = conv
        self.marker = marker
        msgs = conv.messages
        self.first_user = next((i for i, m in enumerate(msgs) if m["role"] == "user"), None)
        texts = [_message_text(m) for m in msgs]
        lengths = _token_lengths(tokenizer, texts) if texts else []
        self.overhead = _per_message_overhead(tokenizer)
        self.costs = [n + self.overhead for n in lengths]
        self.cum = [0, *accumulate(self.costs)]
        self.base = _head_cost(tokenizer, conv)
        self.head_user = None
        if self.first_user is not None:
            text = msgs[self.first_user]["content"] or ""
            self.head_user = text[:head_user_chars] + ("\n[...]" if len(text) > head_user_chars else "")
        self.head_cost = self.base + (_token_lengths(tokenizer, [self.head_user])[0] + self.overhead + 12 if self.head_user else 0)

    def cost(self, start: int, end: int) -> int:
        """Estimated tokens of a window rendering messages[start..end] (inclusive), head included."""
        head = self.base if self.natural(start) else self.head_cost
        return head + self.cum[end + 1] - self.cum[start]

    def natural(self, start: int) -> bool:
        return start == 0 or (self.first_user is not None and start <= self.first_user)

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
        msgs = list(self.conv.messages)
        if squeeze is not None and first_target is not None:
            msgs[start:first_target] = [squeeze_message(m, squeeze) for m in msgs[start:first_target]]
        head_user = self.head_user
        if squeeze is not None and head_user:
            head_user = clip_text(head_user, squeeze)[0]
        if self.natural(start):
            body, index = list(msgs[: end + 1]), list(range(end + 1))
        else:
            omitted = start - (self.first_user + 1) if self.first_user is not None else start
            note = MARKER.format(n=omitted) if self.marker else ""
            head_text = "\n\n".join(x for x in (head_user, note) if x)
            if msgs[start]["role"] == "user":
                merged = {"role": "user", "content": head_text + "\n\n" + (msgs[start]["content"] or "")}
                body, index = [merged, *msgs[start + 1 : end + 1]], [-1, *range(start + 1, end + 1)]
            else:
                body = ([{"role": "user", "content": head_text}] if head_text else []) + list(msgs[start : end + 1])
                index = ([-1] if head_text else []) + list(range(start, end + 1))
        with_system = self.conv.with_system(body)
        index = [-1] * (len(with_system) - len(body)) + index
        return with_system, index


def trajectory(tokenizer, conv: Conversation, max_length: int, window_context: float, planner: Planner) -> EpisodeExamples:
    """Whole-Episode examples, windowed when longer than ``max_length``."""
    out = EpisodeExamples()
    if not conv.targets:
        return out
    last = conv.targets[-1]
    if planner.cost(0, last) <= max_length and _emit(tokenizer, planner, 0, list(conv.targets), max_length, 0, out):
        return out
    out.windowed = True
    pending = list(conv.targets)
    window = 0
    context_budget = int(max_length * window_context)
    while pending:
        t = pending[0]
        if planner.base + planner.costs[t] > max_length * 1.05:
            out.dropped["too_long"] += 1
            pending.pop(0)
            continue
        starts = _starts(planner, t, context_budget)
        chosen = [t]
        for t2 in pending[1:]:
            if planner.cost(starts[0], t2) > max_length:
                break
            chosen.append(t2)
        attempts = [(start, None) for start in starts] + [(starts[-1], level) for level in SQUEEZE_LEVELS]
        emitted = None
        for start, squeeze in attempts:
            trial = list(chosen)
            while trial and emitted is None:
                if _emit(tokenizer, planner, start, trial, max_length, window, out, squeeze):
                    emitted = trial
                else:
                    trial.pop()
            if emitted is not None:
                break
        if emitted is None:
            out.dropped["too_long"] += 1
            pending.pop(0)
        else:
            out.squeezed_windows += squeeze is not None
            pending = [p for p in pending if p not in emitted]
            window += 1
    return out


def _starts(planner: Planner, t: int, budget: int) -> list[int]:
    """Window starts for target ``t``: the widest context within budget first, the minimal one last."""
    bounds = planner.boundaries_before(t)
    if not bounds:
        return [0]
    minimal = bounds[0]
    widest = minimal
    for j in bounds[1:]:
        if planner.cum[t] - planner.cum[j] > budget:
            break
        widest = j
    widest, minimal = (0 if planner.natural(j) else j for j in (widest, minimal))
    return [widest] if widest == minimal else [widest, minimal]


def _emit(
    tokenizer, planner: Planner, start: int, targets: list[int], max_length: int, window: int, out: EpisodeExamples,
    squeeze: int | None = None,
) -> bool:
    """Render one window; on success record its examples and failed turns and return True."""
    messages, index = planner.window_messages(start, targets[-1], squeeze, targets[0])
    local = [index.index(t) for t in targets]
    outcome = render_conversation(tokenizer, messages, planner.conv.tools or None, local)
    if any(ex.num_tokens > max_length for ex in outcome.examples if not set(ex.turns) <= set(outcome.fallback_turns)):
        return False
    for ex in outcome.examples:
        turns = tuple(index[i] for i in ex.turns)
        fallback = set(ex.turns) <= set(outcome.fallback_turns)
        if ex.num_tokens > max_length:
            out.dropped["too_long"] += len(turns)
            continue
        shown = messages if not fallback else messages[: ex.turns[0] + 1]
        out.examples.append(Example(ex, window, tuple(shown), turns, fallback))
    out.fallback_turns += len(outcome.fallback_turns)
    for reason in outcome.failed.values():
        out.dropped[reason.split(":")[0]] += 1
    return True


def per_turn(
    tokenizer, conv: Conversation, max_length: int, history: int, planner: Planner, fit: bool = False
) -> EpisodeExamples:
    """One example per target turn with its history (the last ``history`` messages when set).

    With ``fit``, a history too long for ``max_length`` loses its oldest messages
    (cut at a turn boundary) until it fits, instead of dropping the turn.
    """
    out = EpisodeExamples()
    for n, t in enumerate(conv.targets):
        starts = [j for j in range(t) if conv.messages[j]["role"] in ("user", "assistant")] or [0]
        if history and t > history:
            starts = [j for j in starts if j >= t - history] or [starts[-1]]
        if fit:
            fitting = [j for j in starts if planner.cum[t + 1] - planner.cum[j] + planner.base <= max_length]
            starts = fitting[:3] if fitting else starts[-1:]
        else:
            starts = starts[:1]
        if planner.cum[t + 1] - planner.cum[starts[0]] + planner.base > max_length * 1.2:
            out.dropped["too_long"] += 1
            continue
        for k, start in enumerate(starts):
            if _emit_turn(tokenizer, conv, start, t, n, max_length, out, last_try=k == len(starts) - 1):
                break
    return out


def _emit_turn(tokenizer, conv: Conversation, start: int, t: int, n: int, max_length: int, out: EpisodeExamples, last_try: bool) -> bool:
    messages = conv.with_system(conv.messages[start : t + 1])
    offset = len(messages) - (t + 1 - start)
    outcome = render_conversation(tokenizer, messages, conv.tools or None, [offset + t - start])
    if any(ex.num_tokens > max_length for ex in outcome.examples):
        if last_try:
            out.dropped["too_long"] += 1
        return False
    for ex in outcome.examples:
        out.examples.append(Example(ex, n, tuple(messages[: ex.turns[0] + 1]), (t,), bool(outcome.fallback_turns)))
    out.fallback_turns += len(outcome.fallback_turns)
    for reason in outcome.failed.values():
        out.dropped[reason.split(":")[0]] += 1
    return True


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
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _token_lengths(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]


def _per_message_overhead(tokenizer) -> int:
    """Template tokens around one message (role header, end-of-turn), measured on a tiny conversation."""
    short = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    try:
        one, two = _token_lengths(tokenizer, [apply_template(tokenizer, short[:1], None), apply_template(tokenizer, short, None)])
    except Exception:
        return 8
    return max(2, two - one)


def _head_cost(tokenizer, conv: Conversation) -> int:
    """Tokens of the system prompt and tool definitions as the template renders them."""
    probe = [{"role": "user", "content": "a"}]
    try:
        with_head = apply_template(tokenizer, conv.with_system(probe), conv.tools or None)
        bare = apply_template(tokenizer, probe, None)
    except Exception:
        return 0
    head, body = _token_lengths(tokenizer, [with_head, bare])
    return max(0, head - body)
