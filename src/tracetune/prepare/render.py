"""Render a conversation with the student's own chat template and compute the assistant mask.

``render_conversation`` is a pure function: wire messages in, ``(ids, mask)``
out. The mask is computed here, not by the template: for each target
assistant message ``i`` it renders ``messages[:i]`` with the generation prompt
and ``messages[:i + 1]``; what the second adds to the first is the assistant's
output (reasoning when rendered, text, tool calls and the end-of-turn token;
trailing whitespace after the end-of-turn token stays unsupervised). So any
template works, with or without ``{% generation %}`` markers.

A template is prefix-stable for turn ``i`` when the generation prompt is a
prefix of the rendered turn and the rendered turn is a prefix of the whole
conversation. Turns where the second check fails (a template that rewrites
earlier turns, such as one that drops old reasoning) get an example of their
own (history + that turn), counted as ``fallback_turns``; turns where the
first check fails cannot be masked and are dropped with a reason.

Tokens are produced by tokenizing the whole rendered text once; a token is
supervised when it starts inside an assistant span. A token that crosses a
span boundary is counted (``boundary_tokens``): zero means tokenizing piece by
piece would have given the same ids.

This is the reference method. Trajectory windows are normally assembled from
one rendering of their Episode instead (``pieces``), which gives the same ids
and masks (tested) without a render per target; this method is the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence


Messages = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class RenderedExample:
    """One training example: token ids, the assistant mask, and what it supervises."""

    ids: tuple[int, ...]
    mask: tuple[int, ...]
    turns: tuple[int, ...]  # indices (into the messages rendered) of the supervised assistant messages
    text: str
    spans: tuple[tuple[int, int], ...]  # supervised character spans of ``text``
    boundary_tokens: int = 0

    @property
    def num_tokens(self) -> int:
        """Tokens in the example."""
        return len(self.ids)

    @property
    def num_supervised(self) -> int:
        """Tokens the loss is computed on (those set in ``mask``)."""
        return sum(self.mask)


@dataclass
class RenderOutcome:
    examples: list[RenderedExample] = field(default_factory=list)
    fallback_turns: list[int] = field(default_factory=list)  # turns rendered as an example of their own
    failed: dict[int, str] = field(default_factory=dict)  # turn index -> reason it cannot be supervised


def apply_template(tokenizer, messages: Messages, tools: Sequence[dict] | None, *, generation: bool = False) -> str:
    """``messages`` and ``tools`` as the tokenizer's chat template renders them, a generation prompt added if asked."""
    return tokenizer.apply_chat_template(
        list(messages), tools=list(tools) if tools else None, tokenize=False, add_generation_prompt=generation
    )


def assistant_span(tokenizer, messages: Messages, tools: Sequence[dict] | None, index: int) -> tuple[str, int, int]:
    """The text of ``messages[: index + 1]`` and the character span of message ``index``'s output.

    Raises ``ValueError`` when the generation prompt is not a prefix of the rendered turn.
    """
    prompt = apply_template(tokenizer, messages[:index], tools, generation=True)
    upto = apply_template(tokenizer, messages[: index + 1], tools)
    if not upto.startswith(prompt):
        raise ValueError("generation prompt is not a prefix of the rendered turn")
    end = len(upto.rstrip())
    return upto, len(prompt), max(end, len(prompt))


def render_conversation(
    tokenizer, messages: Messages, tools: Sequence[dict] | None, targets: Sequence[int]
) -> RenderOutcome:
    """Render ``messages`` once with every target assistant message supervised.

    ``targets`` index ``messages``. Unstable turns become examples of their own;
    turns that cannot be masked (or render empty) are listed in ``failed``.
    """
    outcome = RenderOutcome()
    try:
        full = apply_template(tokenizer, messages, tools)
    except Exception as exc:  # jinja raises TemplateError, templates call raise_exception
        outcome.failed = {t: f"template_error: {_short(exc)}" for t in targets}
        return outcome
    stable: list[tuple[int, int, int]] = []
    for t in targets:
        try:
            upto, start, end = assistant_span(tokenizer, messages, tools, t)
        except ValueError:
            outcome.failed[t] = "not_prefix_stable"
            continue
        except Exception as exc:
            outcome.failed[t] = f"template_error: {_short(exc)}"
            continue
        if end <= start:
            outcome.failed[t] = "renders_empty"
        elif full.startswith(upto):
            stable.append((t, start, end))
        else:
            outcome.fallback_turns.append(t)
            outcome.examples.append(tokenize_spans(tokenizer, upto, [(start, end)], (t,)))
    if stable:
        main = tokenize_spans(tokenizer, full, [(s, e) for _, s, e in stable], tuple(t for t, _, _ in stable))
        outcome.examples.insert(0, main)
    return outcome


def tokenize_spans(tokenizer, text: str, spans: Sequence[tuple[int, int]], turns: tuple[int, ...]) -> RenderedExample:
    """Token ids of ``text`` and a mask of 1 for tokens starting inside a span."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    mask = [0] * len(ids)
    boundary = 0
    ordered = sorted(spans)
    k = 0
    for j, (a, b) in enumerate(offsets):
        while k < len(ordered) and ordered[k][1] <= a:
            k += 1
        if k < len(ordered):
            s, e = ordered[k]
            if s <= a < e:
                mask[j] = 1
                boundary += b > e
            elif a < s < b:
                boundary += 1
    return RenderedExample(tuple(ids), tuple(mask), turns, text, tuple(ordered), boundary)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def supervised_runs(ids: list[int], mask: list[int]) -> list[list[int]]:
    """The token ids of each run of consecutive supervised tokens (mask 1)."""
    runs: list[list[int]] = []
    prev = 0
    for tok, m in zip(ids, mask):
        if m and not prev:
            runs.append([])
        if m:
            runs[-1].append(tok)
        prev = m
    return runs


def span_texts(example: RenderedExample, tokenizer) -> list[str]:
    """The decoded text of each run of supervised tokens (for tests and the report)."""
    return [tokenizer.decode(r) for r in supervised_runs(example.ids, example.mask)]

