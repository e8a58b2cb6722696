"""Render an Episode once and tokenize each of its pieces once (the fast path of ``render``).

``render.render_conversation`` finds each target turn's span by rendering the
conversation up to that turn twice (with the generation prompt, and with the
turn), then tokenizes the window's whole text, again for every window that
repeats the same messages. Profiled on pi's before-compaction session (SmolLM2
tokenizer, tool-aware template, 4096 tokens; render 5.5 s of an 8.5 s
prepare): tokenizing windows about half, the prefix renders and transformers'
per-call overhead about a third, per-message token estimates the rest.

Here the Conversation is rendered whole once and cut at its *cut points*:
every user or assistant message starts a segment, and a segment ends right
after every target turn. Each segment's text is what it adds when rendered
after the system prompt alone (tools left out), or, when those texts do not
fit, after its ``CONTEXT`` previous messages too; a target's generation prompt
is what the template adds after its ``CONTEXT`` previous messages (without
context, found once per role of the message before the target; each later
target must start with it). Rendering a segment without context takes one
render of its own messages, against three renders of two or three times as many
(about 2.5 times faster on the shared traces). The pieces are used only
when the segments, end to end, are exactly the tail of the whole rendering
(what precedes them is the *head*: system prompt and tools as the template
renders them); otherwise the caller uses the prefix-diff method. A target's
supervised span is what its segment adds after the generation prompt,
trailing whitespace left out: the prefix diff's rule.

Each piece is tokenized once (ids only, offsets for target pieces). A window's
ids are its pieces' ids end to end, which is what tokenizing the window's text
gives when every piece starts with an added token the tokenizer splits on
first (``<|im_start|>``); the head and the first segments are also tokenized
together once per Episode to check it. Otherwise (``split_safe`` false) each
window's text is tokenized whole, still without any prefix render. A window
whose messages differ from the Episode's (the synthetic first message of a
window that starts later, context squeezed to fit) gets fresh pieces for those
segments, and its whole render must equal the assembled text.

Trust rests on those comparisons and on ``tests/test_pieces.py``, which checks
ids and masks against the prefix-diff method on every shared trace and on
generated conversations under several templates (one groups tool results, one
drops old reasoning, one enforces role alternation).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any, Sequence

from tracetune.prepare.render import RenderedExample, RenderOutcome, apply_template, tokenize_spans
from tracetune.prepare.template_renderer import TemplateRenderer
from tracetune.prepare.token_ids import HeadIds, token_arrays, token_ids, token_lengths

#: Messages rendered before a segment to find its text (the template's view of what precedes it).
CONTEXT = 2

Messages = Sequence[dict[str, Any]]


@dataclass
class Piece:
    """One rendered piece: its text, token ids and, for a target, the supervised span and mask."""

    text: str
    ids: array = field(default_factory=lambda: array("i"))
    span: tuple[int, int] | None = None  # supervised characters of a target's piece
    mask: bytes = b""  # 1 for tokens starting inside ``span`` (targets only)
    boundary: int = 0  # tokens crossing the span's edges


class RenderedEpisode:
    """A Conversation rendered once: the head (system prompt, tools) and its segments, tokenized."""

    def __init__(self, head: Piece, segments: list[Piece], starts: list[int], messages: Messages, failed: dict[int, str],
                 split_safe: bool, system: list[dict[str, Any]], tools: list[dict] | None, renderer: TemplateRenderer,
                 context: int = CONTEXT):
        self.head = head
        self.segments = segments
        self.starts = starts  # message index where each segment starts
        self.messages = messages
        self.count = len(messages)  # messages in the Conversation (system prompt excluded)
        self.failed = failed  # target -> why it cannot be supervised (renders_empty, not_prefix_stable)
        self.split_safe = split_safe
        self.system = system
        self.tools = tools
        self.segment_at = {s: k for k, s in enumerate(starts)}
        self._added = None  # the tokenizer's added tokens, looked up once
        self.renderer = renderer
        self.context = context  # messages each segment was rendered after (those fresh pieces get too)
        self._made: dict[str, Piece] = {}  # text -> the piece made for a window, shared by the windows that repeat it
        self._head_ids = HeadIds(renderer.tokenizer)  # ids of fresh pieces, the repeated task tokenized once
        self._last = None  # ((window, index, targets), what _gather found for them)

    @classmethod
    def build(cls, tokenizer, system: list[dict[str, Any]], messages: Messages, tools, targets: Sequence[int]):
        """The pieces of ``system + messages`` (``targets`` index ``messages``), or None when the template does not allow them."""
        tools = list(tools) if tools else None
        messages = list(messages)
        if not messages:
            return None
        target_set = set(targets)
        cuts = sorted({0} | {i for i, m in enumerate(messages) if m["role"] in ("user", "assistant")}
                      | {t + 1 for t in targets if t + 1 < len(messages)})
        renderer = TemplateRenderer(tokenizer)
        try:
            whole = apply_template(tokenizer, system + messages, tools)
            context, cut = _fitting_cut(renderer, whole, system, messages, cuts, target_set)
            if cut is None and renderer.fast:
                renderer.agrees(system + messages, tools)  # turns the fast path off if it renders otherwise
                if not renderer.fast:  # texts cut (partly) from fast renders: cut again from official ones
                    context, cut = _fitting_cut(renderer, whole, system, messages, cuts, target_set)
        except Exception:  # a template that refuses a piece on its own: the prefix-diff method decides
            return None
        if cut is None:
            return None
        texts, prompts = cut
        joined = "".join(texts)
        head = whole[: len(whole) - len(joined)]  # the system prompt and tools as the template renders them
        pieces = [Piece(head)] + [Piece(t) for t in texts]
        failed: dict[int, str] = {}
        for piece, a in zip(pieces[1:], cuts):
            if a in target_set:
                prompt, end = prompts[a], len(piece.text.rstrip())
                if not piece.text.startswith(prompt):
                    failed[a] = "not_prefix_stable"
                elif end <= len(prompt):
                    failed[a] = "renders_empty"
                else:
                    piece.span = (len(prompt), end)
        tokenize_pieces(tokenizer, pieces)
        added = tokenizer.added_tokens_decoder
        split_safe = all(starts_with_added_token(added, p) for p in pieces[1:]) and _joins_alike(tokenizer, pieces)
        return cls(pieces[0], pieces[1:], cuts, messages, failed, split_safe, system, tools, renderer, context)

    @property
    def head_tokens(self) -> int:
        """Tokens of the head: the system prompt and tool definitions as the template renders them."""
        return len(self.head.ids)

    def message_costs(self) -> list[int]:
        """Tokens per message: each segment's tokens on its first message (exact between cut points)."""
        costs = [0] * self.count
        for start, piece in zip(self.starts, self.segments):
            costs[start] = len(piece.ids)
        return costs

    def outcome(self, tokenizer, window: list[dict[str, Any]], index: list[int], targets: list[int]) -> RenderOutcome | None:
        """``window`` (system included) rendered from the pieces, as ``render_conversation`` would.

        ``index`` gives each window message's index in the Conversation (-1: synthetic),
        ``targets`` index ``window``. A window whose messages differ from the Episode's (the
        synthetic head, context squeezed to fit) gets fresh pieces for those segments, and its
        whole render must then equal the assembled text. None when the window is not whole
        segments, or a check fails: the caller renders it the prefix-diff way.
        """
        got = self._gather(tokenizer, window, index, targets)
        if got is None:
            return None
        pieces, segments, chosen, placed = got
        text = "".join(p.text for p in pieces)
        if placed:  # pieces made or placed here for the first time: the window's own render decides
            try:
                if self.renderer.render(window, self.tools) != text:
                    return None
            except Exception:
                return None
        return self._assemble(tokenizer, pieces, segments, text, chosen, index)

    def tokens(self, tokenizer, window: list[dict[str, Any]], index: list[int], targets: list[int]) -> int | None:
        """The tokens ``outcome`` would give ``window``, counted from its pieces without rendering it whole.

        None when they are not known that way: pieces not split-safe, or ``outcome`` would return None
        before its final check (the window's own render, which a template that renders pieces
        differently in a new place can fail).
        """
        if not self.split_safe:
            return None
        got = self._gather(tokenizer, window, index, targets)
        return None if got is None else sum(len(p.ids) for p in got[0])

    def _gather(self, tokenizer, window: list[dict[str, Any]], index: list[int], targets: list[int]):
        """(pieces, their segment numbers, targets as Conversation indices, whether the window needs its own render
        check) for ``window``; None when it is not whole segments or a piece cannot be made.

        The last window's answer is kept: ``Windows.emit`` asks ``tokens`` and then ``outcome`` of the same window,
        and a window's fresh pieces cost renders.
        """
        key = (window, index, targets)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        got = self._gather_new(tokenizer, window, index, targets)
        self._last = ((list(window), list(index), list(targets)), got)
        return got

    def _gather_new(self, tokenizer, window: list[dict[str, Any]], index: list[int], targets: list[int]):
        n_sys = len(self.system)
        body = index[n_sys:]
        lead = next((i for i, k in enumerate(body) if k >= 0), len(body))
        real = body[lead:]
        if not real or real != list(range(real[0], real[0] + len(real))):
            return None
        first, after = real[0], real[-1] + 1
        if first not in self.segment_at or (after < self.count and after not in self.segment_at):
            return None
        chosen = {index[t] for t in targets}
        segments = list(range(self.segment_at[first], self.segment_at.get(after, len(self.segments))))
        own_head = 1 + (lead > 0)  # the head, and one piece for the synthetic messages if any
        pieces: list[Piece | None] = [self.head] + [None] * (own_head - 1 + len(segments))
        fresh: list[tuple[int, list, list]] = []  # (piece slot, context, messages) rendered for this window
        if lead:
            fresh.append((1, self.system, window[n_sys : n_sys + lead]))
        pos = n_sys + lead
        for slot, seg in enumerate(segments, start=own_head):
            a = self.starts[seg]
            b = self.starts[seg + 1] if seg + 1 < len(self.starts) else self.count
            own = window[pos : pos + b - a]
            if own == list(self.messages[a:b]):
                pieces[slot] = self.segments[seg]
            elif a in chosen:
                return None
            else:
                fresh.append((slot, self.system + window[max(n_sys, pos - self.context) : pos], own))
            pos += b - a
        if fresh and not self._fresh(tokenizer, fresh, pieces):
            return None
        return pieces, [None] * own_head + segments, chosen, bool(fresh) or first != 0

    def _fresh(self, tokenizer, fresh: list[tuple[int, list, list]], pieces: list) -> bool:
        """Render and tokenize the pieces a window does not share with the Episode; False when one cannot be."""
        made, used = [], []
        for slot, context, messages in fresh:
            try:
                before = _render(self.renderer, context)
                after = self.renderer.render(context + messages)
            except Exception:
                return False
            if not after.startswith(before):
                return False
            text = after[len(before) :]
            piece = self._made.get(text)
            if piece is None:
                piece = self._made[text] = Piece(text)
                made.append(piece)
            pieces[slot] = piece
            used.append(piece)
        tokenize_pieces(tokenizer, made, self._head_ids)
        if self._added is None:
            self._added = tokenizer.added_tokens_decoder
        return not self.split_safe or all(starts_with_added_token(self._added, p) for p in used)

    def _assemble(self, tokenizer, pieces: list[Piece], segments: list[int | None], text: str, chosen: set[int],
                  index: list[int]) -> RenderOutcome:
        outcome = RenderOutcome()
        position = {k: i for i, k in enumerate(index) if k >= 0}
        spans, turns, boundary = [], [], 0
        ids, mask = array("i"), bytearray()
        offset = 0
        for piece, seg in zip(pieces, segments):
            start = self.starts[seg] if seg is not None else None
            supervised = False
            if start in chosen:
                if start in self.failed:
                    outcome.failed[position[start]] = self.failed[start]
                else:
                    supervised = True
                    spans.append((offset + piece.span[0], offset + piece.span[1]))
                    turns.append(position[start])
                    boundary += piece.boundary
            if self.split_safe:
                ids.extend(piece.ids)
                mask.extend(piece.mask if supervised else bytes(len(piece.ids)))
            offset += len(piece.text)
        if not turns:
            return outcome
        if self.split_safe:
            example = RenderedExample(tuple(ids), tuple(mask), tuple(turns), text, tuple(spans), boundary)
        else:
            example = tokenize_spans(tokenizer, text, spans, tuple(turns))
        outcome.examples.append(example)
        return outcome


def _fitting_cut(renderer: TemplateRenderer, whole: str, system: list, messages: list, cuts: list[int],
                 targets: set[int]):
    """(context, ``_cut_texts``' answer) for the first context whose segments end ``whole`` exactly: none (each
    segment after the system prompt alone), then ``CONTEXT`` messages; (``CONTEXT``, None) when neither does."""
    try:
        cut = _cut_texts(renderer, system, messages, cuts, targets, 0)
        if cut is not None and whole.endswith("".join(cut[0])):
            return 0, cut
    except Exception:  # a template that refuses a segment without its context: rendered after it
        pass
    cut = _cut_texts(renderer, system, messages, cuts, targets, CONTEXT)
    if cut is not None and whole.endswith("".join(cut[0])):
        return CONTEXT, cut
    return CONTEXT, None


def _cut_texts(renderer: TemplateRenderer, system: list, messages: list, cuts: list[int], targets: set[int],
               context: int = CONTEXT):
    """(each segment's text, each target's generation prompt) rendered after their ``context`` previous messages
    (and the system prompt); None when a render does not extend its context's.

    A generation prompt is always rendered after ``CONTEXT`` messages. With no context (every segment after the
    same system prompt, rendered once), it is rendered for the first target after each role (user, tool,
    assistant) and taken for the later ones after the same role, each of which must start with it.
    """
    texts, prompts = [], {}
    renders: dict[tuple, str] = {}  # ids of a context's messages -> its render
    by_role: dict[str | None, str] = {}

    def rendered(context_messages: list) -> str:
        key = tuple(map(id, context_messages))
        if key not in renders:
            renders[key] = _render(renderer, context_messages)
        return renders[key]

    for a, b in zip(cuts, cuts[1:] + [len(messages)]):
        before_messages = system + messages[max(0, a - context) : a]
        before = rendered(before_messages)
        after = renderer.render(before_messages + messages[a:b])
        if not after.startswith(before):
            return None
        texts.append(after[len(before) :])
        if a not in targets:
            continue
        role = messages[a - 1]["role"] if a else None
        if not context and role in by_role:
            prompts[a] = by_role[role]
            if not texts[-1].startswith(prompts[a]):
                return None
            continue
        prompt_context = system + messages[max(0, a - CONTEXT) : a]
        if not prompt_context:
            return None
        prompt_before = rendered(prompt_context)
        check = renderer.agrees if not prompts else renderer.render  # the first prompt both ways
        prompt = check(prompt_context, None, generation=True)
        if not prompt.startswith(prompt_before):
            return None
        prompts[a] = by_role[role] = prompt[len(prompt_before) :]
    return texts, prompts


def _render(renderer: TemplateRenderer, messages: list[dict[str, Any]]) -> str:
    """The render of ``messages`` without tools; an empty list renders as nothing."""
    return renderer.render(messages) if messages else ""


def tokenize_pieces(tokenizer, pieces: list[Piece], ids_of=None) -> None:
    """Token ids of every piece, and the mask of each target piece.

    A token is supervised when it starts inside the span, as in ``render.tokenize_spans``.
    Ids come from ``ids_of`` (default ``token_arrays``). A target's mask comes from its ids and the
    tokens' byte lengths where those give its offsets (``token_ids.TokenLengths``: a byte-level
    BPE), else from the offsets the tokenizer computes, which take about twice as long.
    """
    lengths = token_lengths(tokenizer)
    quick = [p for p in pieces if p.span is None or lengths is not None]
    slow = [p for p in pieces if p.span is not None and lengths is None]
    if quick:
        texts = [p.text for p in quick]
        for piece, ids in zip(quick, ids_of(texts) if ids_of else token_arrays(tokenizer, texts)):
            piece.ids = ids
            if piece.span is not None:
                got = lengths.mask(piece.ids, piece.text, piece.span)
                if got is None:
                    slow.append(piece)
                else:
                    piece.mask, piece.boundary = got
    if not slow:
        return
    enc = tokenizer([p.text for p in slow], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    for piece, ids, offsets in zip(slow, enc["input_ids"], enc["offset_mapping"]):
        piece.ids = array("i", ids)
        s, e = piece.span
        mask = bytearray(len(ids))
        for j, (a, b) in enumerate(offsets):
            if s <= a < e:
                mask[j] = 1
                piece.boundary += b > e
            elif a < s < b:
                piece.boundary += 1
        piece.mask = bytes(mask)


def starts_with_added_token(added: dict, piece: Piece) -> bool:
    """Whether ``piece`` begins with an added token (``added``: the tokenizer's ``added_tokens_decoder``)."""
    if not piece.ids:
        return False
    token = added.get(piece.ids[0])
    return token is not None and not token.lstrip and piece.text.startswith(token.content)


def _joins_alike(tokenizer, pieces: list[Piece]) -> bool:
    """The head and the first segments tokenized together give their pieces' ids end to end."""
    sample = pieces[:4]
    joined = token_ids(tokenizer, ["".join(p.text for p in sample)])[0]
    return list(joined) == [i for p in sample for i in p.ids]
