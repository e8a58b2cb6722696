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
as ``too_long``, or with ``long_turns="truncate"`` supervised in its first part
(the window's ids cut at ``max_length``; the turn's end is never trained).

``per-turn``: one example per target turn, its history re-rendered each time
(only the last ``per_turn_history`` messages, when set), dropped as
``too_long`` when it does not fit. This is the reference recipe's way, kept
for comparison.

Trajectories render each Episode once (``pieces``) where the template allows:
lengths are then exact and windows are assembled from pieces. Otherwise
lengths are planned with per-message token estimates and each window is
rendered the prefix-diff way. Either way a window that comes out too long gives
back its last target.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from tracetune.prepare.config import PrepareConfig
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
    truncated: bool = False  # ids cut at max_length inside its (only) target turn


@dataclass
class EpisodeExamples:
    examples: list[Example] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # reason -> target turns
    fallback_turns: int = 0
    windowed: bool = False
    squeezed_windows: int = 0
    prefix_tokens: int = 0  # system prompt + tool definitions, as the template renders them
    truncated_turns: int = 0  # turns longer than a window, supervised in their first part (long_turns="truncate")


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


def examples_for(tokenizer, conv, config: PrepareConfig, *, render_once: bool = True):
    """The examples of one Conversation under the configured strategy.

    ``render_once``: trajectories render the Episode once and assemble windows from its
    pieces (``pieces``) where the template allows; False forces the prefix-diff method.
    """
    rendered = None
    if render_once and config.strategy == "trajectory" and conv.targets:
        from tracetune.prepare.pieces import RenderedEpisode

        rendered = RenderedEpisode.build(tokenizer, conv.with_system([]), conv.messages, conv.tools, conv.targets)
    planner = Planner(tokenizer, conv, config.head_user_chars, config.window_marker, rendered)
    if config.strategy == "per-turn":
        result = per_turn(tokenizer, conv, config.max_length, config.per_turn_history, planner, config.per_turn_fit)
    else:
        result = trajectory(tokenizer, conv, config.max_length, config.window_context, planner, config.long_turns)
    result.prefix_tokens = planner.base
    return result


def trajectory(
    tokenizer, conv: Conversation, max_length: int, window_context: float, planner: Planner, long_turns: str = "drop"
) -> EpisodeExamples:
    """Whole-Episode examples, windowed when longer than ``max_length``.

    A target that does not fit any window is dropped as ``too_long``, or with
    ``long_turns="truncate"`` supervised in its first part (``_emit_truncated``).
    """
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
            window += _too_long(tokenizer, planner, t, max_length, window, out, long_turns)
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
            window += _too_long(tokenizer, planner, t, max_length, window, out, long_turns)
            pending.pop(0)
        else:
            out.squeezed_windows += squeeze is not None
            pending = [p for p in pending if p not in emitted]
            window += 1
    return out


#: A cut turn must keep at least this share of max_length supervised, or it is dropped after all.
MIN_TRUNCATED_SHARE = 0.125


def _too_long(tokenizer, planner: Planner, t: int, max_length: int, window: int, out: EpisodeExamples, long_turns: str) -> bool:
    """Drop target ``t`` as ``too_long``, or supervise its first part; True when a window was emitted."""
    if long_turns == "truncate" and _emit_truncated(tokenizer, planner, t, max_length, window, out):
        return True
    out.dropped["too_long"] += 1
    return False


def _emit_truncated(tokenizer, planner: Planner, t: int, max_length: int, window: int, out: EpisodeExamples) -> bool:
    """Supervise the first part of target ``t``, longer than a window: ids cut at ``max_length``.

    The window holds the head and the nearest turn boundary before ``t``, its context squeezed
    as far as it takes; the attempt that supervises the most tokens wins, if that is at least
    ``MIN_TRUNCATED_SHARE`` of ``max_length``. The turn's end (and end-of-turn token) is not trained.
    """
    start = _starts(planner, t, 0)[-1]
    best = None
    for squeeze in (None, *SQUEEZE_LEVELS):
        messages, index = planner.window_messages(start, t, squeeze, t)
        local = index.index(t)
        outcome = planner.rendered.outcome(tokenizer, messages, index, [local]) if planner.rendered else None
        if outcome is None:
            outcome = render_conversation(tokenizer, messages, planner.conv.tools or None, [local])
        main = [ex for ex in outcome.examples if local in ex.turns]
        if not main:
            return False
        kept = sum(main[0].mask[:max_length])
        if best is None or kept > best[0]:
            best = (kept, main[0], messages, local in outcome.fallback_turns)
        if main[0].num_tokens <= max_length:
            break
    kept, example, messages, fallback = best
    if kept < max_length * MIN_TRUNCATED_SHARE:
        return False
    cut = _cut(tokenizer, example, max_length)
    shown = messages if not fallback else messages[: local + 1]
    out.examples.append(Example(cut, window, tuple(shown), (t,), fallback, truncated=cut.num_tokens < example.num_tokens))
    out.truncated_turns += cut.num_tokens < example.num_tokens
    return True


def _cut(tokenizer, example: RenderedExample, max_length: int) -> RenderedExample:
    """``example`` cut to its first ``max_length`` tokens (text and spans cut where that token starts)."""
    if example.num_tokens <= max_length:
        return example
    offsets = tokenizer(example.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
    end = offsets[max_length][0] if len(offsets) > max_length else len(example.text)
    spans = tuple((a, min(b, end)) for a, b in example.spans if a < end)
    return RenderedExample(example.ids[:max_length], example.mask[:max_length], example.turns, example.text[:end],
                           spans, example.boundary_tokens)


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
    outcome = None
    if planner.rendered is not None:
        outcome = planner.rendered.outcome(tokenizer, messages, index, local)
    if outcome is None:
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
