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
from typing import Any

from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.conversations import Conversation
from tracetune.prepare.planner import SQUEEZE_LEVELS, Planner
from tracetune.prepare.render import RenderedExample, render_conversation


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


#: The planner's lengths are estimates when the template cannot render once (each message tokenized
#: alone, plus a measured per-message overhead): tokens merge differently in context, so the sum can
#: be a few percent off either way. A turn estimated up to this factor over max_length is still
#: rendered, and the exact count decides; past it the turn is too long without rendering it.
ESTIMATE_SLACK = 1.05
#: The same for ``per-turn`` examples, whose whole history is estimated (more messages, more error).
PER_TURN_SLACK = 1.2
#: A cut turn must keep at least this share of max_length supervised, or it is dropped after all.
MIN_TRUNCATED_SHARE = 0.125


def trajectory(
    tokenizer, conv: Conversation, max_length: int, window_context: float, planner: Planner, long_turns: str = "drop"
) -> EpisodeExamples:
    """Whole-Episode examples, windowed when longer than ``max_length``.

    A target that does not fit any window is dropped as ``too_long``, or with
    ``long_turns="truncate"`` supervised in its first part (``Windows.truncated``).
    """
    windows = Windows(tokenizer, planner, max_length)
    if not conv.targets:
        return windows.out
    if planner.cost(0, conv.targets[-1]) <= max_length and windows.emit(0, list(conv.targets)):
        return windows.out
    windows.out.windowed = True
    pending = list(conv.targets)
    context_budget = int(max_length * window_context)
    while pending:
        t = pending[0]
        emitted = None
        if planner.base + planner.costs[t] <= max_length * ESTIMATE_SLACK:
            emitted = windows.widest_fitting(t, pending, context_budget)
        if emitted is None:
            windows.too_long(t, long_turns)
            pending.pop(0)
        else:
            pending = [p for p in pending if p not in emitted]
    return windows.out


@dataclass
class Windows:
    """The windows of one Conversation, rendered into ``out``; ``window`` numbers the next one."""

    tokenizer: Any
    planner: Planner
    max_length: int
    out: EpisodeExamples = field(default_factory=EpisodeExamples)
    window: int = 0

    def widest_fitting(self, t: int, pending: list[int], context_budget: int) -> list[int] | None:
        """Emit the window that starts target ``t`` and supervises the most pending targets; those targets.

        Starts are tried widest context first, then the minimal context, then that context
        squeezed (``SQUEEZE_LEVELS``); at each, targets are given back from the end until it fits.
        None when not even ``t`` alone fits.
        """
        starts = _starts(self.planner, t, context_budget)
        chosen = [t]
        for t2 in pending[1:]:
            if self.planner.cost(starts[0], t2) > self.max_length:
                break
            chosen.append(t2)
        attempts = [(start, None) for start in starts] + [(starts[-1], level) for level in SQUEEZE_LEVELS]
        for start, squeeze in attempts:
            for end in range(len(chosen), 0, -1):
                if squeeze is None and self._surely_over(start, chosen[end - 1]):
                    continue
                if self.emit(start, chosen[:end], squeeze):
                    self.out.squeezed_windows += squeeze is not None
                    return chosen[:end]
        return None

    def emit(self, start: int, targets: list[int], squeeze: int | None = None) -> bool:
        """Render one window from message ``start`` through ``targets``; False (nothing kept) when it is too long."""
        messages, index = self.planner.window_messages(start, targets[-1], squeeze, targets[0])
        local = [index.index(t) for t in targets]
        if self._too_long(messages, index, local):
            return False
        outcome = self._render(messages, index, local)
        if any(ex.num_tokens > self.max_length for ex in outcome.examples if not set(ex.turns) <= set(outcome.fallback_turns)):
            return False
        for ex in outcome.examples:
            turns = tuple(index[i] for i in ex.turns)
            fallback = set(ex.turns) <= set(outcome.fallback_turns)
            if ex.num_tokens > self.max_length:
                self.out.dropped["too_long"] += len(turns)
                continue
            shown = messages if not fallback else messages[: ex.turns[0] + 1]
            self.out.examples.append(Example(ex, self.window, tuple(shown), turns, fallback))
        self.out.fallback_turns += len(outcome.fallback_turns)
        for reason in outcome.failed.values():
            self.out.dropped[reason.split(":")[0]] += 1
        self.window += 1
        return True

    def too_long(self, t: int, long_turns: str) -> None:
        """Drop target ``t`` as ``too_long``, or with ``long_turns="truncate"`` supervise its first part."""
        if long_turns == "truncate" and self.truncated(t):
            self.window += 1
            return
        self.out.dropped["too_long"] += 1

    def truncated(self, t: int) -> bool:
        """Supervise the first part of target ``t``, longer than a window: ids cut at ``max_length``.

        The window holds the head and the nearest turn boundary before ``t``, its context squeezed
        as far as it takes; the attempt that supervises the most tokens wins, if that is at least
        ``MIN_TRUNCATED_SHARE`` of ``max_length``. The turn's end (and end-of-turn token) is not trained.
        """
        start = _starts(self.planner, t, 0)[-1]
        best = None
        for squeeze in (None, *SQUEEZE_LEVELS):
            messages, index = self.planner.window_messages(start, t, squeeze, t)
            local = index.index(t)
            outcome = self._render(messages, index, [local])
            main = [ex for ex in outcome.examples if local in ex.turns]
            if not main:
                return False
            kept = sum(main[0].mask[: self.max_length])
            if best is None or kept > best[0]:
                best = (kept, main[0], messages, local in outcome.fallback_turns)
            if main[0].num_tokens <= self.max_length:
                break
        kept, example, messages, fallback = best
        if kept < self.max_length * MIN_TRUNCATED_SHARE:
            return False
        cut = _cut(self.tokenizer, example, self.max_length)
        shown = messages if not fallback else messages[: local + 1]
        was_cut = cut.num_tokens < example.num_tokens
        self.out.examples.append(Example(cut, self.window, tuple(shown), (t,), fallback, truncated=was_cut))
        self.out.truncated_turns += was_cut
        return True

    def _surely_over(self, start: int, end: int) -> bool:
        """Whether the unsqueezed window ``start..end`` is planned past ``max_length`` by more than the slack.

        Only with exact segment counts (the Episode rendered once), where the one estimate left is
        the synthetic head's, a few tokens off at most: such a window is not built at all.
        """
        return self.planner.rendered is not None and self.planner.cost(start, end) > self.max_length * ESTIMATE_SLACK

    def _too_long(self, messages, index: list[int], local: list[int]) -> bool:
        """Whether the window's pieces already count more than ``max_length`` tokens (it is then not rendered whole).

        A window whose targets all fail to render is still emitted for its drop reasons, whatever its length.
        """
        rendered = self.planner.rendered
        if rendered is None or all(index[t] in rendered.failed for t in local):
            return False
        count = rendered.tokens(self.tokenizer, messages, index, local)
        return count is not None and count > self.max_length

    def _render(self, messages, index: list[int], local: list[int]):
        """The window rendered from the Episode's pieces where it rendered once, else the prefix-diff way."""
        outcome = self.planner.rendered.outcome(self.tokenizer, messages, index, local) if self.planner.rendered else None
        if outcome is None:
            outcome = render_conversation(self.tokenizer, messages, self.planner.conv.tools or None, local)
        return outcome


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
        if planner.cum[t + 1] - planner.cum[starts[0]] + planner.base > max_length * PER_TURN_SLACK:
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
