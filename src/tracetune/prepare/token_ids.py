r"""Token ids of many texts, and of window heads tokenized in two parts where that provably changes nothing.

A window that starts after the task repeats the task in its head, followed by
the marker ``[... N earlier messages omitted ...]``. N differs from window to
window, so each head is a new text, though all but its last few dozen
characters are the same for every window of the Episode: on 50 sessions at
4,096 tokens, 7.8 M characters of heads were tokenized for 0.96 M that differed.

``HeadIds`` cuts such a text inside the marker, after ``[...`` and before the
space and digits of N, tokenizes the part before once per Episode and the rest
each time. That gives the same ids as tokenizing the whole text when the
tokenizer cannot merge across that cut, which ``splits_before_count``
establishes from the tokenizer's own description (never from a trial):

- the pre-tokenizer is GPT-2's (``ByteLevel`` with its regex) or a ``Split`` on
  one of the known regexes below followed by ``ByteLevel`` without its regex,
  no prefix space added. In each of these regexes the only alternatives that
  match ``.`` are runs of punctuation (in some, with newlines after them), and
  they end before a space; a space followed by a digit starts a new match. So
  a pre-token always ends after ``[...`` followed by `` 1``, and what each match
  before the cut sees after it (the lookahead of ``\s+(?!\S)``) lies before
  the cut. The model (BPE without dropout here) works inside pre-tokens.
- the normalizer is none or NFC: ``.``, a space and digits compose with
  nothing, so normalizing the two parts apart gives the same text.
- no added token holds a ``.``: the added-token split, which runs first, then
  finds the same tokens either way.

The cut once sat between the newline and ``[``; GPT-2's regex then splits
``\n\n`` differently at the end of a text (``\s+(?!\S)``), which the property
test found. Any other tokenizer tokenizes every text whole, as before.
"""

from __future__ import annotations

import json
import unicodedata
from array import array
from bisect import bisect_left
from itertools import accumulate

from tracetune.prepare.planner import MARKER
from tracetune.prepare.word_ids import WordIds

#: Split regexes (``Split``, behavior ``Isolated``, followed by ``ByteLevel`` without regex) known to cut
#: between ``[...`` and a space followed by a digit: Llama 3's and Qwen 2's (numbers in runs of 1 to 3), and the same
#: with single digits (tracetune's tiny student).
KNOWN_SPLIT_REGEXES = frozenset({
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
})

#: A window head is cut right after this (the marker's opening, before the space and digits of N).
CUT = MARKER.split("{n}")[0].rstrip(" ")


def token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of ``texts`` as ``tokenizer(texts, add_special_tokens=False)`` gives them.

    The Rust tokenizer is called directly (without offsets: several times faster) when it
    carries no truncation or padding and special tokens are not split, i.e. when that call
    would do nothing more; its ASCII text is cut into pre-tokens by ``word_ids.WordIds`` where
    that gives the same ids (about five times faster again).
    """
    backend = _plain_backend(tokenizer)
    if backend is None:
        return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    words = word_ids(tokenizer, backend)
    if words is not None:
        return [ids.tolist() for ids in words(texts)]
    return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]


def token_arrays(tokenizer, texts: list[str]) -> list[array]:
    """``token_ids`` as ``array("i")`` (what the pieces keep), without a list of each on the way."""
    backend = _plain_backend(tokenizer)
    words = word_ids(tokenizer, backend) if backend is not None else None
    if words is not None:
        return words(texts)
    return [array("i", ids) for ids in token_ids(tokenizer, texts)]


#: ``WordIds`` per tokenizer (see ``_per_tokenizer``).
_WORDS: dict[int, tuple[object, int, "WordIds | None"]] = {}


def word_ids(tokenizer, backend) -> "WordIds | None":
    """The tokenizer's ``word_ids.WordIds``, found once per tokenizer (again if it grew); None when it has none."""
    def make():
        parts, added = description(tokenizer), getattr(tokenizer, "added_tokens_decoder", None)
        if parts is None or added is None:
            return None
        return WordIds.of(backend, parts, _pre_regex(parts["pre"]), added)

    return _per_tokenizer(_WORDS, tokenizer, make)


def _per_tokenizer(cache: dict, tokenizer, make):
    """``make()`` for ``tokenizer``, kept in ``cache`` (a few tokenizers: tests load several) with the tokenizer, so
    its id is not reused, and its size, so tokens added since are noticed."""
    size = len(tokenizer)
    entry = cache.get(id(tokenizer))
    if entry is None or entry[0] is not tokenizer or entry[1] != size:
        if len(cache) >= 4:
            cache.clear()
        entry = cache[id(tokenizer)] = (tokenizer, size, make())
    return entry[2]


def _pre_regex(pre: dict | None) -> str | None:
    """The known regex ``pre`` applies (``"ByteLevel"`` for GPT-2's own), or None."""
    if not isinstance(pre, dict):
        return None
    return "ByteLevel" if byte_level(pre, True) else known_split(pre)


def _plain_backend(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (getattr(backend, "encode_batch_fast", None) is not None and backend.truncation is None
            and backend.padding is None and not getattr(backend, "encode_special_tokens", False)
            and not getattr(tokenizer, "split_special_tokens", False)):
        return backend
    return None


def splits_before_count(tokenizer) -> bool:
    """Whether ``tokenizer`` gives ``ids(a + b) == ids(a) + ids(b)`` whenever ``a`` ends with ``[...`` and ``b``
    starts with a space and a digit."""
    parts, added = description(tokenizer), getattr(tokenizer, "added_tokens_decoder", None)
    if parts is None or added is None or parts["model"].get("dropout") or not _nfc_or_none(parts["normalizer"]):
        return False
    if any("." in t.content for t in added.values()):
        return False
    return _pre_regex(parts["pre"]) is not None


def description(tokenizer) -> dict | None:
    """The plain backend's normalizer, pre-tokenizer and post-processor as their JSON says, and its model's type and
    settings; None without one."""
    backend = _plain_backend(tokenizer)
    if backend is None:
        return None
    try:
        parts = {name: json.loads(part.__getstate__()) if part is not None else None
                 for name, part in (("normalizer", backend.normalizer), ("pre", backend.pre_tokenizer),
                                    ("post", backend.post_processor))}
    except (AttributeError, TypeError, ValueError):
        return None
    model = backend.model
    parts["model"] = {"type": type(model).__name__, **{name: getattr(model, name, None) for name in _MODEL_SETTINGS}}
    return parts


#: The model settings the checks read, taken from its attributes: its JSON would copy the whole vocabulary
#: (about 20 ms for 49k tokens, once per Episode).
_MODEL_SETTINGS = ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk")


def _nfc_or_none(normalizer: dict | None) -> bool:
    """No normalizer, or NFC (which changes neither ASCII nor text already NFC)."""
    return normalizer is None or normalizer.get("type") == "NFC"


def byte_level(step: dict, regex: bool | None = None) -> bool:
    """A ``ByteLevel`` pre-tokenizer adding no prefix space (using its own regex or not, when ``regex`` says)."""
    return (step.get("type") == "ByteLevel" and step.get("add_prefix_space") is False
            and (regex is None or step.get("use_regex") is regex))


def known_split(pre: dict) -> str | None:
    """The regex of ``pre`` when it is a ``Split`` on one of ``KNOWN_SPLIT_REGEXES`` followed by ``ByteLevel``
    without its regex, no prefix space added; else None."""
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if not steps or len(steps) != 2 or not byte_level(steps[1], False):
        return None
    split = steps[0]
    regex = (split.get("pattern") or {}).get("Regex")
    if split.get("type") == "Split" and split.get("behavior") == "Isolated" and split.get("invert") is False \
            and regex in KNOWN_SPLIT_REGEXES:
        return regex
    return None


class HeadIds:
    """``token_ids`` for one Episode's fresh pieces, each text before a window marker tokenized once."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.safe = splits_before_count(tokenizer)
        self._before: dict[str, array] = {}

    def __call__(self, texts: list[str]) -> list[array]:
        """Token ids of each text, as ``token_ids`` gives them."""
        cuts = [_cut(text) if self.safe else 0 for text in texts]
        new = list(dict.fromkeys(t[:c] for t, c in zip(texts, cuts) if c > 0 and t[:c] not in self._before))
        parts = [t[c:] for t, c in zip(texts, cuts)]
        got = token_arrays(self.tokenizer, new + parts)
        for before, ids in zip(new, got):
            self._before[before] = ids
        out = []
        for text, cut, ids in zip(texts, cuts, got[len(new):]):
            out.append(self._before[text[:cut]] + ids if cut > 0 else ids)
        return out


def _cut(text: str) -> int:
    """Where ``text`` is cut: after the first ``[...`` followed by a space and an ASCII digit; 0 for nowhere."""
    at = text.find(CUT + " ")
    while at >= 0:
        end = at + len(CUT)
        if "0" <= text[end + 1 : end + 2] <= "9":
            return end
        at = text.find(CUT + " ", at + 1)
    return 0


#: ``token_lengths`` per tokenizer (see ``_per_tokenizer``).
_LENGTHS: dict[int, tuple[object, int, "TokenLengths | None"]] = {}


def token_lengths(tokenizer) -> "TokenLengths | None":
    """The bytes each token id covers, when token offsets follow from those lengths; else None.

    True of a byte-level BPE (each character of a vocabulary entry is one byte) whose text nothing
    changes before it is split (no normalizer, or NFC on text already NFC; no prefix space) and whose
    offsets nothing trims afterwards (no post-processor, or ``TemplateProcessing``), with no added
    token that swallows the whitespace beside it. Found once per tokenizer (again if it grew).

    ``TokenLengths.mask`` also checks each text: its tokens' lengths must add up to its bytes. A byte
    the vocabulary lacks is dropped (no unknown token) or becomes one unknown token per character
    (never fused), so any such error moves the sum the same way and cannot be cancelled out.
    """
    return _per_tokenizer(_LENGTHS, tokenizer, lambda: TokenLengths.of(tokenizer))


class TokenLengths:
    """Byte lengths of a tokenizer's token ids, and what they tell of a span's tokens (``mask``)."""

    def __init__(self, lengths: array, nfc: bool):
        self.lengths = lengths
        self.nfc = nfc  # the tokenizer normalizes to NFC: only text already NFC is measured

    @classmethod
    def of(cls, tokenizer) -> "TokenLengths | None":
        """The lengths of ``tokenizer``'s ids, or None when they do not give its offsets (see ``token_lengths``)."""
        parts, added = description(tokenizer), getattr(tokenizer, "added_tokens_decoder", None)
        if parts is None or added is None:
            return None
        norm, post, model = parts["normalizer"], parts["post"], parts["model"]
        if not _nfc_or_none(norm) or (post is not None and post.get("type") != "TemplateProcessing"):
            return None
        if model.get("type") != "BPE" or not _byte_level_split(parts["pre"]):
            return None
        if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") or (
                model.get("unk_token") and model.get("fuse_unk")):
            return None  # a vocabulary entry longer than its bytes, or one unknown token for runs of any length
        if any(t.lstrip or t.rstrip for t in added.values()):
            return None
        vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=True)
        lengths = array("i", bytes(4 * (max(vocab.values(), default=-1) + 1)))
        for token, index in vocab.items():
            lengths[index] = len(token)  # a byte-level vocabulary entry: one character per byte
        for index, token in added.items():
            lengths[index] = len(token.content.encode("utf-8"))
        return cls(lengths, norm is not None)

    def mask(self, ids, text: str, span: tuple[int, int]) -> tuple[bytes, int] | None:
        """(mask, boundary tokens) of ``span`` in ``text`` from ``ids`` alone, as offsets would give them; None
        when the lengths do not add up to ``text``'s UTF-8 bytes (or ``text`` is not NFC for an NFC tokenizer).

        A token is masked when it starts inside the span; a token crossing either edge counts once
        (``pieces.tokenize_pieces``' rule). Offsets count characters, and a token that starts or ends
        inside a character gets that character's start or end; in bytes the same tokens are those
        starting at or after the span's first byte and before its end byte.
        """
        if text.isascii():
            size, s, e = len(text), span[0], span[1]
        else:
            try:
                size = len(text.encode("utf-8"))
                s, e = len(text[: span[0]].encode("utf-8")), len(text[: span[1]].encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate
                return None
            if self.nfc and not unicodedata.is_normalized("NFC", text):
                return None
        lengths = self.lengths
        starts = list(accumulate((lengths[i] for i in ids), initial=0))
        if starts[-1] != size:
            return None
        first, last = bisect_left(starts, s, 0, len(ids)), bisect_left(starts, e, 0, len(ids))
        boundary = int(first > 0 and starts[first] > s) + int(last > first and starts[last] > e)
        return bytes(first) + b"\x01" * (last - first) + bytes(len(ids) - last), boundary


def _byte_level_split(pre: dict | None) -> bool:
    """A ``ByteLevel`` pre-tokenizer adding no prefix space, alone or after ``Split`` and ``Digits`` steps."""
    if not isinstance(pre, dict):
        return False
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
    if not steps or not byte_level(steps[-1]):
        return False
    return all(step.get("type") in ("Split", "Digits") for step in steps[:-1])
