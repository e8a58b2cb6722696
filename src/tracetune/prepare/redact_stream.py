"""Redaction of a corpus read one file at a time: learn from every file first, then apply file by file.

``redact.redact_sessions`` holds every session at once: it learns every text of
the corpus (secrets and their numbered placeholders, strong values, user names
from home paths), then rewrites. ``prepare`` streams the same two passes with
``StreamRedactor``:

1. learn: each file is read, spilled as read (``stream.learn_pass``) and dropped. Its distinct texts are scanned
   (``Redactor._detect``; in worker processes when ``prepare`` has some) and the
   main process takes the findings in the corpus's order, so placeholders get
   the numbers ``redact_sessions`` gives them. Kept afterwards: the
   placeholders (one per distinct secret value), the user names, and the spans
   found in each text that held something, under a 16-byte hash of the text
   (``hits``); a text where nothing was found leaves only its hash in a list
   that counts distinct texts for the report. Values under secret-naming
   argument keys are learned after every text, as ``redact_sessions`` does.
2. apply: each file's spilled sessions are loaded and every text rewritten with
   what the whole corpus taught (a strong secret first met in the last file is
   replaced in the first one too). A text's spans come from ``hits``: nothing is
   detected twice.

The sessions and the report come out as ``redact_sessions`` gives them for the
whole corpus (``tests/test_prepare_streaming.py``). What is applied to is
exactly what was learned: the trace file is never read a second time (a file
that changes while it is read is skipped with an error, ``stream``). ``scrub``
(error messages, paths) detects afresh.
"""

from __future__ import annotations

import hashlib
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from tracetune.conversation.types import Session
from tracetune.prepare.redact import _SECRET_KEY, RedactionReport, RedactOptions, Redactor, Span, _fill
from tracetune.prepare.redact_patterns import classify, plausible_value
from tracetune.prepare.redact_walk import collect_arguments, collect_texts, keyed_strings, map_session


def digest(text: str) -> bytes:
    """The 16-byte BLAKE2b hash of ``text`` that ``hits`` keys a text's spans by."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def distinct_texts(sessions: Iterable[Session]) -> list[str]:
    """The texts of ``sessions`` in ``redact_sessions``' learning order, each once."""
    return [t for t in dict.fromkeys(collect_texts(list(sessions))) if t]


def keyed_candidates(sessions: Iterable[Session]) -> list[tuple[str, str]]:
    """(key, value) of every tool-call argument whose key names a secret, in order."""
    return [(k, v) for args in collect_arguments(list(sessions)) for k, v in keyed_strings(args) if _SECRET_KEY.search(k)]


class StreamRedactor(Redactor):
    """A ``Redactor`` whose memory holds findings, not texts (see the module docstring)."""

    def __init__(self, options: RedactOptions | None = None):
        super().__init__(options)
        opts = self.options
        self.active = opts.secrets or opts.paths or opts.pii
        self.hits: dict[bytes, list[Span]] = {}
        self.trusted = False  # applying to texts the learn pass saw: spans come from ``hits``
        self._keyed: list[tuple[str, str]] = []
        self._seen = array("q")  # first 8 bytes of each text's hash, per file (duplicates across files)
        self._seen_chars = array("q")
        self._counted: set[bytes] = set()  # texts whose replacements the report already counts
        self._final = None  # the distinct text hashes, sorted, once ``finish`` has counted them
        self._clock = 0.0

    # learn pass -----------------------------------------------------------
    def detect(self, texts: list[str]) -> list[list[Span]]:
        """Spans of each text (pure; what worker processes run)."""
        scan = self.options.secrets or self.options.pii
        return [self._detect(t) if scan else [] for t in texts]

    def learn_found(self, texts: list[str], spans: list[list[Span]], keyed: list[tuple[str, str]]) -> None:
        """One file's distinct texts with their spans, and its secret-keyed arguments, in the file's order."""
        started = time.perf_counter()
        for text, found in zip(texts, spans):
            key = digest(text)
            self._note(key, len(text))
            if found:
                self.hits[key] = found
            for _, _, kind, value in found:
                self._placeholder(value, kind)
            if self.options.paths:
                self.paths.learn(text)
        self._keyed.extend(keyed)
        self._clock += time.perf_counter() - started

    def finish_learning(self) -> None:
        """Values under secret-naming keys, learned after every text (as ``Redactor.learn_keyed``)."""
        for key, value in self._keyed:
            if not self.options.secrets or not plausible_value(value, min_length=4, allow_words=True):
                continue
            kind = classify(value, "argument_secret")
            h = digest(value)
            self.hits[h] = _fill([(0, len(value), kind, value)], self.hits.get(h, []))
            self._placeholder(value, kind)
        self._keyed = []

    def _note(self, key: bytes, chars: int) -> None:
        short = int.from_bytes(key[:8], "little", signed=True)
        if self._final is None:
            self._seen.append(short)
            self._seen_chars.append(chars)
        elif not _holds(self._final, short):  # after ``finish``: a text scrubbed (as redact_sessions counts it)
            self.report.texts += 1
            self.report.chars += chars

    def learn(self, text: str) -> None:
        """``Redactor.learn``, keeping found spans under the text's hash; when ``trusted``, spans come from ``hits``."""
        if not text or text in self._spans:
            return
        key = digest(text)
        if self.trusted:
            self._spans[text] = self.hits.get(key, [])
            return
        self._note(key, len(text))
        spans = self._detect(text) if self.options.secrets or self.options.pii else []
        self._spans[text] = spans
        if spans:
            self.hits[key] = spans
        for _, _, kind, value in spans:
            self._placeholder(value, kind)
        if self.options.paths:
            self.paths.learn(text)

    # apply pass -----------------------------------------------------------
    def apply(self, text: str) -> str:
        """``Redactor.apply``, counting a text's replacements in the report only the first time any file holds it."""
        log = FileLog()
        done = self._rewrite(text, log)[0]
        self.account(log)
        return done

    def redact_file(self, sessions: list[Session]) -> list[Session]:
        """One file's sessions rewritten (the body of ``redact_sessions``' loop) and counted in the report."""
        out, log = self.rewrite_file(sessions)
        self.account(log)
        return out

    def rewrite_file(self, sessions: list[Session]) -> tuple[list[Session], "FileLog"]:
        """One file's sessions rewritten with what the corpus taught, and what ``account`` needs to count them;
        the report is left alone (worker processes run this, the caller accounts in file order)."""
        log = FileLog()
        if not self.active:
            return sessions, log
        started = time.perf_counter()
        out = []
        self.trusted = True
        try:
            for session in sessions:
                changed = False

                def rewrite(text: str, where: str) -> str:
                    nonlocal changed
                    new, found = self._rewrite(text, log)
                    if new != text:
                        changed = True
                        log.where.setdefault(where, Counter()).update(found or {})
                    return new

                out.append(map_session(session, rewrite))
                log.sessions_changed += changed
        finally:
            self.trusted = False
            self.forget()
            log.seconds = time.perf_counter() - started
        return out, log

    def _rewrite(self, text: str, log: "FileLog") -> tuple[str, Counter | None]:
        """(``text`` redacted, kind -> replacements in it); a text's first rewrite since ``forget`` is logged."""
        if not text:
            return text, None
        done = self._done.get(text)
        if done is not None:
            return done, self._found.get(text)
        if text not in self._spans:
            self.learn(text)
        found: Counter = Counter()
        used: list[tuple[str, str]] = []
        done = self._paths_text(self._secrets_text(text, found, used), found)[0]
        if found:
            self._found[text] = found
            log.texts.append((digest(text), found, used))
        self._done[text] = done
        return done, found or None

    def account(self, log: "FileLog") -> None:
        """Count a ``rewrite_file`` (or ``apply``) in the report, as ``redact_sessions`` counts it: every value
        replaced, and a text's replacements the first time any file holds that text."""
        report = self.report
        for key, found, used in log.texts:
            counted = key in self._counted  # an earlier file held this text: its replacements are counted already
            self.count_used(used, occurrences=not counted)
            if counted:
                continue
            self._counted.add(key)
            self.paths.home_paths += found.get("home_path", 0)
            self.paths.mentions += found.get("user_name", 0)
        for where, counts in log.where.items():
            report.where.setdefault(where, Counter()).update(counts)
        report.sessions_changed += log.sessions_changed
        self._clock += log.seconds

    def forget(self) -> None:
        """Drop the per-text caches (what one file needed)."""
        self._spans.clear()
        self._done.clear()
        self._found.clear()

    def finish(self, sessions: int) -> RedactionReport:
        """The report's totals, as ``redact_sessions`` fills them (texts scrubbed afterwards count as there)."""
        import numpy as np

        report = self.report
        report.sessions = sessions
        if not self.active:
            return report
        keys = np.frombuffer(self._seen, dtype=np.int64)
        self._final, first = np.unique(keys, return_index=True)
        report.texts = int(len(first))
        report.chars = int(np.frombuffer(self._seen_chars, dtype=np.int64)[first].sum()) if len(first) else 0
        report.usernames_found = len(self.paths.names)
        report.home_paths = self.paths.home_paths
        report.username_mentions = self.paths.mentions
        report.seconds = self._clock
        return report


@dataclass
class FileLog:
    """What ``StreamRedactor.account`` counts of one file's rewrite: each text's first rewrite (hash, kind ->
    replacements, (value, kind) replaced in order), field -> kind -> replacements, sessions changed."""

    texts: list[tuple[bytes, Counter, list[tuple[str, str]]]] = field(default_factory=list)
    where: dict[str, Counter] = field(default_factory=dict)
    sessions_changed: int = 0
    seconds: float = 0.0


def _holds(sorted_keys, key: int) -> bool:
    import numpy as np

    at = int(np.searchsorted(sorted_keys, key))
    return at < len(sorted_keys) and int(sorted_keys[at]) == key


def learn_files(redactor: StreamRedactor, files: Iterator[list[Session]]) -> None:
    """The learn pass in this process (tests and small inputs)."""
    for sessions in files:
        texts = distinct_texts(sessions)
        redactor.learn_found(texts, redactor.detect(texts), keyed_candidates(sessions))
    redactor.finish_learning()
