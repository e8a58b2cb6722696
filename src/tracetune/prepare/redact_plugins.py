"""detect-secrets as a second net behind tracetune's own patterns.

The library's plugins are called through their ``analyze_string`` in memory:
no baseline file, no settings file, no global filter state. Its plugins yield
secret values, not positions, so each value is cleaned (surrounding quotes,
``=`` or spaces stripped) and located again in the text as a whole token.

Which plugins run, and why:

- the token plugins (GitHub, GitLab, Slack, Stripe, AWS, Azure storage,
  OpenAI, PyPI, npm, SendGrid, Square, Discord, Telegram, Twilio, Mailchimp,
  IBM, SoftLayer, Cloudant, basic auth, JWT, Artifactory): their hits are
  taken when the value is a whole token; the looser ones (those not anchored
  on a literal prefix) only when the value also passes ``strong_value``;
- ``KeywordDetector`` (``password = "..."``, ``"apiKey": "..."``): only on
  lines that contain one of its keywords, with the library's own heuristics
  (templated values, ``$VAR``, indirect references such as ``x = get(..)``,
  id-like strings) and ``plausible_value``;
- the entropy plugins only when asked (``RedactOptions.high_entropy``): they
  flag git shas, UUIDs, hashes and base64 images in ordinary code, so they
  cost faithfulness for little gain over the typed patterns;
- never ``IPPublicDetector`` (an address is not a credential) nor
  ``PrivateKeyDetector`` (it yields the header line; the whole block is
  handled by ``redact_patterns``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator

from tracetune.prepare.redact_match import Words, caseless
from tracetune.prepare.redact_patterns import plausible_value, strong_value

Found = tuple[int, int, str, str]  # start, end, kind, value

_SKIP = {"Public IP (ipv4)", "Private Key", "Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String"}
_ANCHORED = {
    "AWS Access Key", "Azure Storage Account access key", "GitHub Token", "GitLab Token", "OpenAI Token",
    "PyPI Token", "NPM tokens", "SendGrid API Key", "Slack Token", "Square OAuth Secret", "Stripe Access Key",
    "JSON Web Token", "Basic Auth Credentials",
}
_KEYWORD_LINE = re.compile(r"(?i)pass|pwd|secret|key|contrase")
_QUOTE = re.compile(r"[\"'`]")  # the keyword patterns run here all need a quoted value
_RUN = re.compile(r"[A-Za-z0-9_\-]{10,}")  # the gated plugins' values never hold / + =
# Gates for the plugins that are slow, quadratic on long lines, or fire on no literal prefix:
# (a pattern, the shortest run of [A-Za-z0-9_-] their values can have). Such a plugin runs only
# on the lines its pattern matches (all of them find single-line secrets).
_GATES = {
    "Basic Auth Credentials": (re.compile(r"://"), 0),
    "NPM tokens": (re.compile(r"_authToken"), 0),
    "Artifactory Credentials": (re.compile(r"AKC|AP[0-9A-F]"), 10),
    "Cloudant Credentials": (re.compile(r"(?i)cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pw|pass|token)|cloudant\.com"), 24),
    "Discord Bot Token": (re.compile(r"[MNO][A-Za-z0-9_-]{23}"), 24),
    "IBM COS HMAC Credentials": (re.compile(r"(?i)secret"), 48),
    "IBM Cloud IAM Key": (re.compile(r"(?i)key|pwd|pass|token"), 44),
    "Mailchimp Access Key": (re.compile(r"-us[0-9]"), 36),
    "Slack Token": (re.compile(r"(?i)xox|hooks\.slack"), 10),
    "SoftLayer Credentials": (re.compile(r"(?i)softlayer|sl[_-]?(?:api)?(?:key|pwd|pass|token)"), 64),
    "Telegram Bot Token": (re.compile(r"[0-9]{8}:"), 35),
}
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_\-]")


_LINE_GATES = [_KEYWORD_LINE, *(g[0] for g in _GATES.values())]
_CASELESS = {p: c for p in _LINE_GATES if (c := caseless(p)) is not None}


def _literals(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """The lower-case words a case-blind gate is an alternation of (``(?i)key|pwd|hooks\\.slack``), or None."""
    if not pattern.pattern.startswith("(?i)"):
        return None
    words = []
    for alternative in pattern.pattern[4:].split("|"):
        if not re.fullmatch(r"[a-z0-9_:/\-]+", alternative.replace("\\.", "")):
            return None
        words.append(alternative.replace("\\.", "."))
    return tuple(words)


#: Gates that are alternations of words: their lines are found from where those words start in the lowered text.
_LITERALS = {p: w for p in _LINE_GATES if (w := _literals(p)) is not None}
_GATE_WORDS = Words(sorted({w for words in _LITERALS.values() for w in words}))


@lru_cache(maxsize=2)
def _gate_starts(aligned: str) -> dict[str, list[int]]:
    """Where every gate word starts in ``aligned``, found once for all the gates that read the same text."""
    return _GATE_WORDS.starts(aligned)


_SAME_KIND = {  # detect-secrets types that tracetune's own patterns also name
    "AWS Access Key": "aws_access_key_id",
    "Azure Storage Account access key": "azure_key",
    "Basic Auth Credentials": "url_password",
    "GitHub Token": "github_token",
    "GitLab Token": "gitlab_token",
    "JSON Web Token": "jwt",
    "NPM tokens": "npm_token",
    "OpenAI Token": "openai_key",
    "PyPI Token": "pypi_token",
    "Slack Token": "slack_token",
    "Stripe Access Key": "stripe_key",
}


def _slug(secret_type: str) -> str:
    return _SAME_KIND.get(secret_type) or re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


@lru_cache(maxsize=1)
def _plugins() -> tuple:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    out = []
    for secret_type, cls in sorted(get_mapping_from_secret_type_to_class().items()):
        if secret_type in _SKIP:
            continue
        out.append((secret_type, cls()))
    return tuple(out)


def _clean(value: str) -> str:
    return value.strip(" \t\r\n\"'`,;").lstrip("=:")


def whole_tokens(text: str, value: str, start: int) -> Iterator[tuple[int, int]]:
    """(start, end) when ``value`` at ``start`` is not glued to a longer token."""
    end = start + len(value)
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    glued = (before and _TOKEN_CHAR.match(before) and _TOKEN_CHAR.match(value[0])) or (
        after and _TOKEN_CHAR.match(after) and _TOKEN_CHAR.match(value[-1])
    )
    if not glued:
        yield start, end


def _locate(text: str, value: str) -> Iterator[tuple[int, int]]:
    """Every place ``value`` occurs in ``text`` as a whole token."""
    start = text.find(value)
    while start >= 0:
        yield from whole_tokens(text, value, start)
        start = text.find(value, start + 1)


def _longest_run(text: str) -> int:
    return max((len(m) for m in _RUN.findall(text)), default=0)


def _scopes(text: str, secret_type: str, aligned: str | None) -> Iterator[tuple[int, str]]:
    """(offset, piece) to run a plugin on: the whole text, or only the lines that pass its gate."""
    gate = _GATES.get(secret_type)
    if gate is None:
        yield 0, text
        return
    for offset, line in _lines_with(text, gate[0], aligned):
        if gate[1] <= 10 or _longest_run(line) >= gate[1]:
            yield offset, line


def token_plugin_hits(text: str, aligned: str | None = None) -> Iterator[Found]:
    """Whole-token hits of detect-secrets' token plugins in ``text`` (the unanchored ones only on strong values).

    ``aligned``: ``text.lower()`` where it keeps every position (``redact_match.aligned_lower``),
    where the case-blind gates run faster (``_lines_with``).
    """
    longest = None
    for secret_type, plugin in _plugins():
        gate = _GATES.get(secret_type)
        if gate is not None and gate[1] > 10:  # no line can pass a gate the whole text's longest run fails
            longest = _longest_run(text) if longest is None else longest
            if longest < gate[1]:
                continue
        for offset, scope in _scopes(text, secret_type, aligned):
            for raw in plugin.analyze_string(scope):
                value = _clean(raw)
                if not plausible_value(value, min_length=8, allow_words=True):
                    continue
                if secret_type not in _ANCHORED and not strong_value(value):
                    continue
                for start, end in _locate(scope, value):
                    yield offset + start, offset + end, _slug(secret_type), value


def _lines_with(text: str, pattern: re.Pattern[str], aligned: str | None = None) -> Iterator[tuple[int, str]]:
    """(offset, line) of each line of ``text`` that ``pattern`` matches.

    A case-blind alternation of words (``_LITERALS``) is looked for in ``aligned`` (``text.lower()``
    where it keeps every position), all gates' words in one pass (``_gate_starts``); no match holds a newline,
    so the lines are the same. Another case-blind pattern made of lower-case literals
    (``_CASELESS``) runs without the flag on ``aligned`` when the text is ASCII: the same
    positions, several times faster.
    """
    words = _LITERALS.get(pattern) if aligned is not None else None
    if words is not None:
        found = _gate_starts(aligned)
        starts = sorted(at for word in words for at in found.get(word, ()))
    else:
        caseless = _CASELESS.get(pattern) if aligned is not None and text.isascii() else None
        starts = (m.start() for m in (caseless.finditer(aligned) if caseless is not None else pattern.finditer(text)))
    seen_end = -1
    for at in starts:
        if at < seen_end:
            continue
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        seen_end = end
        yield start, text[start:end]


def keyword_hits(text: str, aligned: str | None = None) -> Iterator[Found]:
    """Quoted values that ``KeywordDetector`` finds on keyword lines of ``text``, less templated and id-like ones.

    ``aligned``: as for ``token_plugin_hits``.
    """
    from detect_secrets.filters import heuristic

    detector = _keyword_detector()
    for offset, line in _lines_with(text, _KEYWORD_LINE, aligned):
        if len(line) > 2000 or not _QUOTE.search(line):
            continue
        raws = list(detector.analyze_string(line))
        if not raws or heuristic.is_indirect_reference(line):  # the costlier test second
            continue
        for raw in raws:
            value = _clean(raw)
            if (
                heuristic.is_templated_secret(value)
                or heuristic.is_prefixed_with_dollar_sign(value)
                or heuristic.is_likely_id_string(value, line)
                or not plausible_value(value)
            ):
                continue
            for start, end in _locate(line, value):
                yield offset + start, offset + end, "secret_keyword", value


@lru_cache(maxsize=1)
def _keyword_detector():
    from detect_secrets.plugins.keyword import KeywordDetector

    return KeywordDetector()


@lru_cache(maxsize=1)
def _entropy_plugins() -> tuple:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    return (Base64HighEntropyString(), HexHighEntropyString())


_HEX_ID = re.compile(r"^(?:[0-9a-f]{7,64}|[0-9A-F]{7,64})$")


def entropy_hits(text: str) -> Iterator[Found]:
    """Quoted high-entropy strings, less what ordinary code is full of (hashes, UUIDs, data URLs)."""
    from detect_secrets.filters import heuristic

    for plugin in _entropy_plugins():
        for value in plugin.analyze_string(text):
            if len(value) < 16 or len(value) > 200 or _HEX_ID.match(value) or heuristic.is_potential_uuid(value):
                continue
            if heuristic.is_sequential_string(value) or plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit:
                continue
            for start, end in _locate(text, value):
                yield start, end, "high_entropy", value
