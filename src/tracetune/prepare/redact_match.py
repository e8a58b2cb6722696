"""How the secret patterns are run: each is tried only where a match can start, with a scan's results.

Detection is most of ``prepare``'s reading time, and Python's ``re`` tries a
pattern at every position of a text. ``SecretPattern`` and ``PatternSet`` cut
that down three ways, each giving exactly the matches of a full scan (property
tests in ``tests/test_redact.py`` compare the two):

- hints: the lower-case words a match must hold; a pattern whose hints are not
  in the text is not run (``PatternSet`` finds every hint of every pattern in
  one pass, ``Words``);
- a ``lead``: every match holds a hint starting at most that far into it (or at
  the start of the word run that holds it, ``WORD_RUN``), so the pattern is
  tried only there (``anchored``);
- case-blind patterns run without their flag on lowered ASCII text
  (``caseless``), several times faster.

All three read the text lowered, which must keep every character in place
(``aligned_lower``): a text holding a letter that ``re`` folds to ASCII but
``lower()`` does not (``ODD_FOLDS``) is scanned everywhere by every pattern.
``redact_pii``, ``redact_paths`` and ``redact_plugins`` use ``anchored`` and
``occurrences`` the same way. The patterns themselves are ``redact_patterns``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterable, Iterator

#: ``SecretPattern.lead`` for a match that starts where the run of word characters and hyphens holding its hint starts.
WORD_RUN = -1
#: Letters ``re`` matches to ASCII letters when case-blind, though ``lower()`` does not turn them into those.
ODD_FOLDS = "\u0130\u0131\u017f\u212a"  # İ ı ſ K


def caseless(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """A case-blind ``(?i)...`` pattern as one that finds the same spans in the text lower-cased, if ASCII.

    What follows ``(?i)`` is lower-cased (literals, class ranges); None when that could change its
    meaning: an upper-case escape (``\\S``, ``\\W``...) or anything that does not compile.
    Python's ``re`` is several times slower with the flag than without.
    """
    if not pattern.pattern.startswith("(?i)") or re.search(r"\\[A-Z]", pattern.pattern):
        return None
    try:
        lowered = pattern.pattern[4:].lower().replace("(?p<", "(?P<").replace("(?p=", "(?P=")  # group syntax kept
        return re.compile(lowered, pattern.flags & ~re.IGNORECASE)
    except re.error:
        return None


def aligned_lower(text: str, lowered: str) -> str | None:
    """``lowered`` (``text.lower()``) when a case-blind word is found in ``text`` exactly where it sits in ``lowered``.

    True of ASCII text, and of other text that lowering keeps as long (``İ`` grows) without the
    ``ODD_FOLDS`` letters ``re`` matches to ASCII ones. None otherwise.
    """
    if text.isascii() or (len(lowered) == len(text) and not any(c in text for c in ODD_FOLDS)):
        return lowered
    return None


@dataclass(frozen=True)
class SecretPattern:
    kind: str
    regex: re.Pattern[str]
    check: Callable[[str], bool] | None = None  # for values that are secrets only by context
    hints: tuple[str, ...] = ()  # lowercase; the pattern cannot match a text holding none of them
    lead: int | None = None  # every match holds a hint starting at most this far into it (or WORD_RUN)

    @cached_property
    def fast_regex(self) -> re.Pattern[str] | None:
        """``regex`` without its case-blind flag, for lowered ASCII text (``caseless``); None when it has none."""
        return caseless(self.regex)

    def spans(self, text: str, aligned: str | None = None, at: dict[str, list[int]] | None = None):
        """(start, end, value) of each secret this pattern finds in ``text`` (hints are ``PatternSet``'s to check).

        ``aligned``: ``text.lower()`` where it keeps every position (``aligned_lower``). There a
        case-blind pattern runs without its flag on ASCII text (``fast_regex``), and a pattern with
        a ``lead`` is tried only where a match can start (``anchored``); spans are the same, values
        are read from ``text``. ``at``: where each word starts in ``aligned`` (``Words.starts``), when known.
        """
        has_group = "s" in self.regex.groupindex
        fast = self.fast_regex if aligned is not None and text.isascii() else None
        regex, subject = (fast, aligned) if fast is not None else (self.regex, text)
        if self.lead is not None and aligned is not None:
            if at is None:
                at = {h: list(occurrences(aligned, h)) for h in self.hints}
            found = sorted(i for h in self.hints for i in at.get(h, ()))
            matches = anchored(regex, subject, _starts(text, found, self.lead))
        else:
            matches = regex.finditer(subject)
        for match in matches:
            start, end = match.span("s") if has_group else match.span()
            if start < 0 or start == end:
                continue
            value = text[start:end]
            if self.check is not None and not self.check(value):
                continue
            yield start, end, value


class PatternSet:
    """Patterns run together: every hint is looked for in one pass per text, not once per pattern naming it.

    Without an aligned lowered text (``ODD_FOLDS`` letters: ``ſecret`` holds no hint once lowered,
    yet a case-blind pattern matches it) every pattern runs, everywhere.
    """

    def __init__(self, patterns: tuple[SecretPattern, ...]):
        self.patterns = patterns
        self.hints = Words(sorted({h for p in patterns for h in p.hints}))

    def find(self, text: str, aligned: str | None):
        """(pattern, start, end, value) of each secret the patterns find in ``text`` (``aligned``: ``aligned_lower``)."""
        at = None if aligned is None else self.hints.starts(aligned)
        for pattern in self.patterns:
            if at is not None and pattern.hints and at.keys().isdisjoint(pattern.hints):
                continue
            for start, end, value in pattern.spans(text, aligned, at):
                yield pattern, start, end, value


class Words:
    """Where each of a fixed set of words starts in a text, overlapping ones included, found in one pass.

    An Aho-Corasick automaton (``ahocorasick_rs``): on the 50-session benchmark, the typed secret
    patterns' 63 hints took 1.0 s as 63 ``in`` scans per text and 0.08 s this way.
    """

    def __init__(self, words: Iterable[str]):
        self.words = tuple(words)
        self._automaton = None

    def starts(self, text: str) -> dict[str, list[int]]:
        """word -> its start positions in ``text``, ascending; only the words present."""
        if not self.words:
            return {}
        if self._automaton is None:
            import ahocorasick_rs

            self._automaton = ahocorasick_rs.AhoCorasick(self.words)
        out: dict[str, list[int]] = {}
        words = self.words
        for index, start, _ in self._automaton.find_matches_as_indexes(text, overlapping=True):
            out.setdefault(words[index], []).append(start)
        return out

    def __getstate__(self) -> dict:
        return {"words": self.words, "_automaton": None}  # the automaton does not pickle: built again on use


def _starts(text: str, found: list[int], lead: int) -> list[int]:
    """Every position where a match can start: it holds a hint (starting at ``found``, ascending) at most ``lead``
    into it.

    With ``WORD_RUN``: the start of the run of word characters (``\\w`` as ``re`` reads it: ``isalnum`` or ``_``)
    and hyphens that holds each hint.
    """
    if lead != WORD_RUN:
        return sorted({s for i in found for s in range(max(0, i - lead), i + 1)})
    starts, last, last_start = [], -1, -1
    for i in found:
        j = i
        while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_-"):
            j -= 1
            if j == last:  # the same run as the previous hint: its start is known
                j = last_start
                break
        starts.append(j)
        last, last_start = i, j
    return sorted(set(starts))


def occurrences(text: str, part: str) -> Iterator[int]:
    """Every position where ``part`` starts in ``text``, overlapping ones included."""
    at = text.find(part)
    while at >= 0:
        yield at
        at = text.find(part, at + 1)


def anchored(regex: re.Pattern[str], subject: str, starts: Iterable[int]) -> Iterator[re.Match[str]]:
    """``regex.finditer(subject)`` when no match can start outside ``starts`` (ascending): tried at those only."""
    end = 0
    for start in starts:
        if start < end:
            continue
        match = regex.match(subject, start)
        if match is not None:
            end = max(match.end(), start + 1)
            yield match
