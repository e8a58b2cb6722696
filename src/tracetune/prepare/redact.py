"""Privacy before anything is rendered: secrets out, home directories anonymised.

``redact_sessions`` rewrites every text a Session carries: message content,
reasoning, tool-call arguments (keys and string values, recursively; tool
names untouched), raw arguments, the session's cwd, source, parent reference,
system prompt, tool descriptions and schemas, and reader warnings (they quote
paths). A secret used as a JSON key (``{"ghp_...": true}``) goes like any other.

Secrets become typed, numbered placeholders (``<REDACTED:github_token:1>``):
the same value gets the same placeholder in every session, so a model still
sees that the token exported in one command is the one used in the next.
Detection is ``redact_patterns`` (typed tokens, then context patterns such as
``PASSWORD=``, bearer headers, URL passwords) followed by detect-secrets
(``redact_plugins``). A value is replaced where it was found; a *strong* value
(long, mixed characters, or a typed token) is also replaced wherever else it
occurs as a whole token, since a password typed once is often echoed later.
A tool-call argument whose key names a secret (``{"password": "..."}``) is a
secret as a whole (kind ``argument_secret``) unless it looks like code or a
placeholder.

Personal data (``RedactOptions.pii``, on by default): e-mail addresses, phone
numbers, public IP addresses and payment card numbers (``redact_pii`` says
what is left alone: role addresses, private IPs, version numbers...).

The report counts what was replaced by kind and by field (user text, tool
arguments, tool results...), never a value.

Home directories (``/Users/alice``, ``/home/alice``, ``C:\\Users\\alice``)
become ``RedactOptions.home`` (Windows homes keep their drive and separators);
the user names seen in them are replaced where they stand alone too, as far as
that is safe (see ``redact_paths``: ``whoami`` output, ``alice@host``,
``--Users-alice-project--``; long names everywhere as whole words).

Precision/recall: the defaults favour faithful code over catching every
random-looking string. Git shas, UUIDs, hashes and base64 images are not
touched (the entropy plugins are off unless ``high_entropy``); values next to
secret-sounding names are dropped when they look like code (``get_token()``,
``os.environ``, ``${VAR}``, ``<token>``). A secret with no recognisable shape
and no telling name around it (a bare password pasted into a chat, or
``my password is swordfish``: a plain word after "password is" reads as prose)
is missed; use ``extra_patterns`` or ``usernames`` for what you know is there.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import Counter
from typing import Iterable, Iterator

from tracetune.conversation.types import Session
from tracetune.prepare import redact_plugins
from tracetune.prepare.redact_pii import pii_hits
from tracetune.prepare.redact_match import PatternSet, SecretPattern, aligned_lower
from tracetune.prepare.redact_patterns import CONTEXT_PATTERNS, TYPED_PATTERNS, classify, plausible_value, strong_value
from tracetune.prepare.redact_paths import HomePaths
from tracetune.prepare.redact_report import RedactionReport, RedactOptions
from tracetune.prepare.redact_walk import collect_arguments, collect_texts, keyed_strings, map_session


Span = tuple[int, int, str, str]  # start, end, kind, value


class Redactor:
    """Two passes over a corpus: ``learn`` every text, then ``apply`` to each (both cached)."""

    def __init__(self, options: RedactOptions | None = None):
        self.options = options or RedactOptions()
        self.report = RedactionReport()
        self.report.redactor = self
        self._extra = tuple(SecretPattern(k, re.compile(p)) for k, p in self.options.extra_patterns.items())
        self._typed = PatternSet(TYPED_PATTERNS + self._extra)
        self._allow = set(self.options.allowlist)
        self._spans: dict[str, list[Span]] = {}
        self._done: dict[str, str] = {}
        self._found: dict[str, Counter] = {}  # text -> kind -> replacements made in it
        self._placeholders: dict[str, str] = {}
        self._numbers: Counter = Counter()
        self._used: set[str] = set()
        self._strong: dict[str, str] = {}  # value -> kind
        self._strong_res: dict[tuple[str, ...], re.Pattern[str]] = {}  # values present -> their alternation
        opts = self.options
        self.paths = HomePaths(opts.home, opts.user, opts.standalone_usernames, opts.usernames)

    # pass 1 ---------------------------------------------------------------
    def learn(self, text: str) -> None:
        """Pass 1: find secrets and personal data in ``text``, give each a placeholder, learn users from home paths."""
        if text in self._spans or not text:
            return
        self.report.texts += 1
        self.report.chars += len(text)
        spans = self._detect(text) if self.options.secrets or self.options.pii else []
        self._spans[text] = spans
        for _, _, kind, value in spans:
            self._placeholder(value, kind)
        if self.options.paths:
            self.paths.learn(text)

    def learn_keyed(self, key: str, value: str) -> None:
        """A tool-call argument whose key names a secret (``{"api_key": "..."}``): the whole value is one.

        The value has no telling context of its own, so the key supplies it.
        """
        if not self.options.secrets or not _SECRET_KEY.search(key):
            return
        if not plausible_value(value, min_length=4, allow_words=True):
            return
        self.learn(value)
        kind = classify(value, "argument_secret")
        self._spans[value] = _fill([(0, len(value), kind, value)], self._spans[value])
        self._placeholder(value, kind)

    def _detect(self, text: str) -> list[Span]:
        """Spans by tier: typed tokens, context patterns, detect-secrets, then personal data, each filling gaps only."""
        spans: list[Span] = []
        if self.options.secrets:
            aligned = aligned_lower(text, text.lower())
            typed = [(a, b, p.kind, v) for p, a, b, v in self._typed.find(text, aligned)]
            context = [(a, b, classify(v, p.kind), v) for p, a, b, v in _CONTEXT.find(text, aligned)]
            spans = _fill(_fill([], typed), context)
            if self.options.detect_secrets:
                plugins = (list(redact_plugins.token_plugin_hits(text, aligned))
                           + list(redact_plugins.keyword_hits(text, aligned)))
                if self.options.high_entropy:
                    plugins += redact_plugins.entropy_hits(text)
                spans = _fill(spans, plugins)
        if self.options.pii:
            spans = _fill(spans, pii_hits(text))
        return spans

    def _placeholder(self, value: str, kind: str) -> str | None:
        if value in self._allow:
            return None
        if value not in self._placeholders:
            self._numbers[kind] += 1
            number = f":{self._numbers[kind]}" if self.options.numbered else ""
            self._placeholders[value] = f"<REDACTED:{kind}{number}>"
            if kind in _TYPED_KINDS or strong_value(value):
                self._strong[value] = kind
                self._strong_res.clear()
        return self._placeholders[value]

    # pass 2 ---------------------------------------------------------------
    def apply(self, text: str) -> str:
        """Pass 2: ``text`` with found values replaced by placeholders and home paths anonymised (cached per text)."""
        if not text:
            return text
        if text not in self._spans:
            self.learn(text)
        done = self._done.get(text)
        if done is None:
            found: Counter = Counter()
            done = self._replace_paths(self._replace_secrets(text, found), found)
            self._done[text] = done
            if found:
                self._found[text] = found
        return done

    def found_in(self, text: str) -> Counter | None:
        """kind -> replacements ``apply`` made in ``text`` (``home_path`` and ``user_name`` for paths)."""
        return self._found.get(text)

    def _replace_secrets(self, text: str, found: Counter) -> str:
        used: list[tuple[str, str]] = []
        text = self._secrets_text(text, found, used)
        self.count_used(used)
        return text

    def count_used(self, used: list[tuple[str, str]], occurrences: bool = True) -> None:
        """Count the (value, kind) replacements ``_secrets_text`` made: each one (unless ``occurrences`` is false),
        and each value once."""
        for value, kind in used:
            if occurrences:
                self.report.occurrences[kind] += 1
            if value not in self._used:
                self._used.add(value)
                self.report.distinct[kind] += 1

    def _secrets_text(self, text: str, found: Counter, used: list[tuple[str, str]]) -> str:
        """``text`` with every known secret value replaced by its placeholder; each replacement added to ``found``
        (by kind) and ``used`` (value, kind), nothing counted in the report."""
        spans = self._spans.get(text, [])
        if self._strong:
            spans = _fill(spans, list(self._strong_spans(text)))
        out, last = [], 0
        for start, end, kind, value in spans:
            placeholder = self._placeholders.get(value)
            if placeholder is None:
                continue
            out.append(text[last:start])
            out.append(placeholder)
            found[kind] += 1
            used.append((value, kind))
            last = end
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def _strong_spans(self, text: str) -> Iterator[Span]:
        """Where known strong values occur in ``text`` as whole tokens.

        ``re`` tries an alternation of literals at every position of the text, while ``in`` finds
        one literal far faster: the values present are picked first, and most texts hold none.
        """
        present = tuple(v for v in self._strong if v in text)
        if not present:
            return
        regex = self._strong_res.get(present)
        if regex is None:
            if len(self._strong_res) >= 256:
                self._strong_res.clear()
            regex = self._strong_res[present] = _alternation(present)
        for match in regex.finditer(text):
            value = match.group()
            yield from (
                (start, end, self._strong[value], value)
                for start, end in redact_plugins.whole_tokens(text, value, match.start())
            )

    def _replace_paths(self, text: str, found: Counter) -> str:
        text, homes, mentions = self._paths_text(text, found)
        self.paths.home_paths += homes
        self.paths.mentions += mentions
        return text

    def _paths_text(self, text: str, found: Counter) -> tuple[str, int, int]:
        """(``text`` with home paths and user names anonymised, home paths, names): each counted in ``found``, not
        in the report."""
        if not self.options.paths:
            return text, 0, 0
        text, homes, mentions = self.paths.rewrite(text)
        for kind, count in (("home_path", homes), ("user_name", mentions)):
            if count:
                found[kind] += count
        return text, homes, mentions


_TYPED_KINDS = frozenset(p.kind for p in TYPED_PATTERNS)
_CONTEXT = PatternSet(CONTEXT_PATTERNS)
_SECRET_KEY = re.compile(
    r"(?i)(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?|auth"
    r"|authorization)$"
)


def _alternation(values: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


def _fill(kept: list[Span], candidates: list[Span]) -> list[Span]:
    """``kept`` (sorted, disjoint) plus the candidates that overlap nothing kept, sorted by start.

    Among overlapping candidates the earliest wins, then the longest, then the
    first listed (pattern order).
    """
    out = list(kept)
    starts = [span[0] for span in out]
    order = sorted(range(len(candidates)), key=lambda i: (candidates[i][0], candidates[i][0] - candidates[i][1], i))
    for i in order:
        start, end = candidates[i][0], candidates[i][1]
        at = bisect.bisect_right(starts, start)
        if (at and out[at - 1][1] > start) or (at < len(out) and out[at][0] < end):
            continue
        out.insert(at, candidates[i])
        starts.insert(at, start)
    return out


def redact_sessions(
    sessions: Iterable[Session], options: RedactOptions | None = None
) -> tuple[list[Session], RedactionReport]:
    """Every Session with its secrets replaced and home paths anonymised, plus the report."""
    started = time.perf_counter()
    sessions = list(sessions)
    redactor = Redactor(options)
    opts = redactor.options
    if not (opts.secrets or opts.paths or opts.pii):
        redactor.report.sessions = len(sessions)
        return sessions, redactor.report
    for text in collect_texts(sessions):
        redactor.learn(text)
    for arguments in collect_arguments(sessions):
        for key, value in keyed_strings(arguments):
            redactor.learn_keyed(key, value)
    out = []
    report = redactor.report
    for session in sessions:
        changed = False

        def rewrite(text: str, where: str) -> str:
            nonlocal changed
            new = redactor.apply(text)
            if new != text:
                changed = True
                report.where.setdefault(where, Counter()).update(redactor.found_in(text) or {})
            return new

        out.append(map_session(session, rewrite))
        report.sessions_changed += changed
    report.sessions = len(sessions)
    report.usernames_found = len(redactor.paths.names)
    report.home_paths = redactor.paths.home_paths
    report.username_mentions = redactor.paths.mentions
    report.seconds = time.perf_counter() - started
    return out, report
