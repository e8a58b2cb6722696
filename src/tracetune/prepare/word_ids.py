r"""Token ids of text cut into pre-tokens by Python, each distinct pre-token's ids asked of the BPE model once.

Profiled on 50 sessions (29 M characters tokenized at 4,096 tokens), the Rust
tokenizer spent about 90% of its time in pre-tokenization: the bookkeeping of
its normalized strings and alignments for every pre-token, not the regex and
not BPE. Tokenizing again the same texts already cut into words (its
``is_pretokenized`` input) took as long.

For a byte-level BPE whose pre-tokenizer is one of the known regexes
(``token_ids.KNOWN_SPLIT_REGEXES`` behind a ``Split``, or GPT-2's own in
``ByteLevel``), ids are pure functions of the pre-tokens: BPE works inside each
one. ``WordIds`` therefore

1. splits a text at the added tokens as the tokenizer does first (leftmost
   longest; tokens not normalized first, then the normalized ones, in what is
   left), each added token becoming its id;
2. cuts what is left into pre-tokens with Python's ``re``, using the same regex
   written for ASCII (``\p{L}`` as ``[A-Za-z]``, ``\p{N}`` as ``[0-9]``, ``\s``
   as ASCII whitespace), which on ASCII text is the same regex: every character
   class agrees there, and ``re`` is a backtracking engine with the same
   leftmost-first alternation, greedy repetition and lookahead as Oniguruma;
3. maps each pre-token through a cache of the BPE model's own answer for it
   (``model.tokenize`` on its byte-level characters), kept packed as the bytes
   of an ``array("i")`` so a text's ids are one ``bytes.join``.

Beyond ASCII, Python's ASCII classes call every other character "other" (not
a letter, digit or space). A character the regexes' engine also treats so
(``other``: symbols, punctuation, marks and format characters by their Unicode
category, each confirmed once by comparing the Rust pre-tokenizer's pieces
with Python's around it) is split here too, in text the normalizer leaves
alone (NFC text for an NFC tokenizer). A text holding any other character is
cut at *safe cuts* into runs of lines: right after a newline that follows a
character other than whitespace, when the next character is not whitespace
either. With the known regexes a pre-token always ends there and the next one
starts there, and what each pre-token's lookahead sees is the same on both
sides (the single newline is one pre-token whatever follows it); NFC composes
nothing across a newline; no added token holds one (checked). Runs Python can
split are split here, the others go to the Rust tokenizer in one batch.

When ``WordIds.of`` accepts a tokenizer it also tokenizes a probe of every
ASCII character in the contexts that matter (runs of whitespace, newlines,
contractions, digits, added tokens) both ways, and refuses the tokenizer if any
id differs. ``tests/test_word_ids.py`` compares both ways on every shared trace
and on generated text for each accepted pre-tokenizer.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from typing import Callable

#: Each known pre-tokenizer regex (``"ByteLevel"``: GPT-2's, inside ``ByteLevel``) written for ASCII text.
ASCII_REGEXES = {
    "ByteLevel": r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+":
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+":
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}

#: Distinct pre-tokens whose ids are kept at most; the cache starts again when full (memory bounded by construction).
CACHE_WORDS = 200_000

#: Where a text with other characters than ASCII may be cut: after a newline that follows a non-space, before a non-space.
SAFE_CUT = re.compile(r"(?<=[^\s]\n)(?=[^\s])")


#: Unicode categories of the characters that may be "other" to the regexes (neither letter, digit nor space).
OTHER_CATEGORIES = frozenset({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Mn", "Me", "Cf"})


def _byte_chars() -> str:
    """GPT-2's byte-to-character map (what ``ByteLevel`` turns each byte into) as a 256-character string."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return "".join(chars)


class _Cache(dict):
    """Pre-token -> its ids, computed by ``ids_of`` on a miss."""

    def __init__(self, ids_of: Callable[[str], bytes], fixed: dict[str, bytes]):
        super().__init__(fixed)
        self.ids_of = ids_of
        self.fixed = fixed

    def __missing__(self, word: str) -> bytes:
        if len(self) >= CACHE_WORDS:
            self.clear()
            self.update(self.fixed)
        ids = self[word] = self.ids_of(word)
        return ids


class WordIds:
    """``token_ids`` for a tokenizer whose pre-tokens Python can cut (see the module docstring)."""

    def __init__(self, backend, regex: str, raw: list[str], normalized: list[str], added: dict[str, int], nfc: bool):
        self.backend = backend
        self.words = re.compile(regex, re.ASCII)
        self.raw = _alternation(raw)
        self.normalized = _alternation(normalized)
        self.nfc = nfc
        self.other: set[str] = set()  # characters beyond ASCII confirmed "other" for both engines
        self.refused: set[str] = set()
        self.table = str.maketrans({n: c for n, c in enumerate(_byte_chars())})
        model = backend.model
        self.cache = _Cache(lambda word: _packed(t.id for t in model.tokenize(self.byte_level(word))),
                            {c: _packed((i,)) for c, i in added.items()})

    @classmethod
    def of(cls, backend, parts: dict, pre_regex: str | None, added: dict) -> "WordIds | None":
        """A ``WordIds`` for a tokenizer's plain Rust ``backend``, or None when its pre-tokens are not known to be
        Python's (another pre-tokenizer, normalizer or model, an added token matched otherwise) or the probe finds
        an id that differs.

        ``parts`` is ``token_ids.description``'s, ``pre_regex`` the known regex its pre-tokenizer applies
        (``"ByteLevel"`` for GPT-2's, None for another), ``added`` the tokenizer's ``added_tokens_decoder``.
        """
        model, norm = parts["model"], parts["normalizer"]
        if model.get("type") != "BPE" or model.get("dropout") or model.get("continuing_subword_prefix") or model.get(
                "end_of_word_suffix") or not (norm is None or norm.get("type") == "NFC"):
            return None
        regex = ASCII_REGEXES.get(pre_regex or "")
        tokens = list(added.values())
        if regex is None or any(t.lstrip or t.rstrip or t.single_word or not t.content or "\n" in t.content
                                for t in tokens):
            return None
        ids = {t.content: index for index, t in added.items()}
        fast = cls(backend, regex, [t.content for t in tokens if not t.normalized],
                   [t.content for t in tokens if t.normalized], ids, norm is not None)
        probe = _probe(list(ids))
        rust = [e.ids for e in backend.encode_batch_fast(probe, add_special_tokens=False)]
        if [got.tolist() for got in fast(probe)] != rust:
            return None
        return fast

    def __call__(self, texts: list[str]) -> list[array]:
        """Token ids of each text (``array("i")``), as the Rust tokenizer gives them without special tokens."""
        out: list = [None] * len(texts)
        slow: list[str] = []  # runs of lines Python cannot split, for the Rust tokenizer
        parts: list[tuple[int, list]] = []  # (text, its runs: ids, or the index of a slow run)
        for n, text in enumerate(texts):
            if self.splits(text):
                out[n] = _unpacked(self.split_ids(text))
                continue
            runs = []
            for run in SAFE_CUT.split(text):
                if self.splits(run):
                    runs.append(self.split_ids(run))
                else:
                    runs.append(len(slow))
                    slow.append(run)
            parts.append((n, runs))
        if slow:
            done = [_packed(e.ids) for e in self.backend.encode_batch_fast(slow, add_special_tokens=False)]
            for n, runs in parts:
                out[n] = _unpacked(b"".join(done[r] if isinstance(r, int) else r for r in runs))
        return out

    def splits(self, text: str) -> bool:
        """Whether Python splits ``text`` as the tokenizer does: ASCII, or only confirmed "other" characters beyond
        it in text the normalizer leaves as it is."""
        if text.isascii():
            return True
        beyond = {c for c in set(text) if c > "\x7f"}
        if beyond & self.refused or (beyond - self.other and not self._confirm(beyond - self.other)):
            return False
        return not self.nfc or unicodedata.is_normalized("NFC", text)

    def _confirm(self, chars: set[str]) -> bool:
        """Whether every one of ``chars`` is "other" for both engines (the Rust pre-tokenizer's pieces around it are
        Python's); each answer is kept."""
        ok = True
        for char in sorted(chars):
            if unicodedata.category(char) in OTHER_CATEGORIES and self._pieces_agree(char):
                self.other.add(char)
            else:
                self.refused.add(char)
                ok = False
        return ok

    def _pieces_agree(self, char: str) -> bool:
        pre = self.backend.pre_tokenizer
        for context in (f"a{char}a", f"1{char}1", f" {char} ", f"'{char}s", f".{char}.\n{char}\n", f"{char}{char}  x"):
            python = [self.byte_level(w) for w in self.words.findall(context)]
            if [p for p, _ in pre.pre_tokenize_str(context)] != python:
                return False
        return True

    def byte_level(self, word: str) -> str:
        """``word`` as ``ByteLevel`` gives it to the model: each UTF-8 byte as its character."""
        return word.encode("utf-8").decode("latin-1").translate(self.table)

    def split_ids(self, text: str) -> bytes:
        """Token ids of ``text``, which ``splits``, packed (``array("i")``'s bytes)."""
        words: list[str] = []
        for k, part in enumerate(self.raw.split(text) if self.raw else (text,)):
            if k % 2:
                words.append(part)
                continue
            for j, piece in enumerate(self.normalized.split(part) if self.normalized else (part,)):
                if j % 2:
                    words.append(piece)
                elif piece:
                    found = self.words.findall(piece)
                    if sum(map(len, found)) != len(piece):  # the regexes leave nothing out; never reached
                        raise AssertionError(f"pre-tokens do not cover {piece!r}")
                    words.extend(found)
        return b"".join(map(self.cache.__getitem__, words))


def _packed(ids) -> bytes:
    return array("i", ids).tobytes()


def _unpacked(packed: bytes) -> array:
    ids = array("i")
    ids.frombytes(packed)
    return ids


def _alternation(contents: list[str]):
    """A regex capturing the leftmost longest of ``contents`` (None for none)."""
    if not contents:
        return None
    return re.compile("(" + "|".join(re.escape(c) for c in sorted(set(contents), key=len, reverse=True)) + ")")


def _probe(added: list[str]) -> list[str]:
    """Texts holding every ASCII character in the contexts the regexes tell apart, added tokens between some."""
    chars = [chr(c) for c in range(128)]
    spaces = [" ", "  ", "\t", "\n", "\n\n", " \n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85"]
    texts = ["".join(chars), "".join(reversed(chars))]
    texts += [f"{a}{c}{b}" for c in chars for a, b in (("a", "a"), (" ", "1"), ("1", " "), ("'", "s"), (".", "\n"))]
    texts += [f"x{s}y{s}" for s in spaces] + [f"{s}'S're'LL'd 12345 ab{s}" for s in spaces]
    texts += ["It's 'REALLY' 1234567 isn't\n\n  \n  x\t\t\n", "a  b   \n\n\tc\r\n\r\n  "]
    for token in added[:8]:
        texts += [f"{token}x {token} {token}{token}\n", f"a{token}'s\n  {token}  12"]
    texts += ["naïve café — “quoted” ✓\nnext line\n  ümlaut\nok\n", "a\né\nb", "é\n\nb\n c\nd"]
    return texts
