"""Personal data that is not a credential: e-mail addresses, phone numbers, IP addresses, payment cards.

Run by ``redact`` after the secret patterns when ``RedactOptions.pii`` is on;
each hit becomes ``<REDACTED:email:N>`` and so on, like a secret. What is
found, and what is left alone on purpose:

- ``email``: ``local@domain.tld``, where the top-level domain is two letters
  or a common generic one (``com``, ``org``, ``io``, ``dev``...), so code
  such as ``x@self.weight`` or ``@pytest.mark`` is not one. Not: role and robot addresses that name
  nobody (``git@github.com`` as an SSH remote, ``noreply@``, ``root@``,
  ``support@``...), reserved domains (``example.com``, ``*.test``,
  ``*.invalid``, ``localhost``), an ``@`` inside a URL's userinfo (that is a
  login, handled as ``url_password``), and file names such as ``icon@2x.png``
  (a "top-level domain" that is a common file extension).
- ``phone``: an international number (``+44 20 7946 0958``, ``+14155552671``)
  or a North-American one written with its usual punctuation
  (``(415) 555-2671``, ``415-555-2671``), 8 to 15 digits. Bare digit runs are
  never phones (ids, timestamps, sizes).
- ``ip_address``: IPv4 and IPv6 addresses that are public (global unicast):
  ``127.0.0.1``, ``10.x``, ``192.168.x``, link-local, documentation and
  multicast addresses name no one and stay, and so do the public DNS
  resolvers (``8.8.8.8``, ``1.1.1.1``...). IPv4 that reads as a version
  stays too: glued to a word or a dash (``v1.2.3.4``, ``pkg-1.2.3.4``,
  ``1.2.3.4-rc1``), after ``version``/``release``/``==``/``>=``, or one of a
  longer dotted run (``1.2.3.4.5``), or next to decimal numbers that are no
  addresses (SVG path data: ``2.874.118 3.176.77.84 1.235``), or with
  single-digit parts only (``1.0.0.0``, ``3.5.0.1``: versions far more often
  than hosts). ``81.2.69.160`` is an address.
- ``payment_card``: a number grouped as cards print it (4-4-4-4, 4-4-4-4-3,
  Amex 4-6-5, one kind of space or dash) starting with 2-6, or a plain run
  of exactly 16 digits with a Visa, Mastercard or Discover prefix (15 for
  Amex), that passes the Luhn check and is no part of arithmetic
  (``*``, ``/``, ``^``). Timestamps, ids and big integers in code rarely fit
  all of that; columns of numbers (``ps`` output) do not group like a card.

Names are the paths redactor's job (``redact_paths``); street addresses and
national ids are not looked for.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterator

from tracetune.prepare.redact_match import anchored

PII_KINDS = ("email", "phone", "ip_address", "payment_card")

Found = tuple[int, int, str, str]  # start, end, kind, value

# Found from each "@" outward (a regex scanning every word for a later "@" is slow on long texts).
_LOCAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}\Z")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,24})(?![\w\-(\[]|\.[A-Za-z0-9])"
)
# A top-level domain is two letters (a country) or one of the common generic ones: ``x@self.weight``
# (matrix product) and ``@pytest.mark`` are code.
_GENERIC_TLDS = frozenset(
    "com org net edu gov mil int info biz name pro aero coop museum io ai dev app xyz tech cloud online site "
    "email mail me co inc llc ltd company world today live life news blog shop store space website digital "
    "network systems solutions software studio design agency media social group team works zone".split()
)
_NOT_BEFORE_LOCAL = re.compile(r"[\w.+\-%/]")
_ROLE_LOCALS = frozenset(
    "git root admin administrator noreply no-reply donotreply do-not-reply mailer-daemon postmaster hostmaster "
    "webmaster support info security abuse hello contact team sales help ubuntu ec2-user centos debian "
    "user username name email you your someone somebody example test".split()
)
_RESERVED_DOMAINS = re.compile(r"(?i)(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost|local)$")
_FILE_TLDS = frozenset(
    "png jpg jpeg gif svg webp ico bmp js mjs cjs ts tsx jsx py rb go rs md txt css scss html htm json yaml yml "
    "toml lock xml csv sh zip gz tar pdf".split()
)

_PHONE = re.compile(
    r"(?<![\w+.\-/=#:])(?:"
    r"\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|\+\d{8,15}"  # E.164
    r"|\(\d{3}\)[ ]?\d{3}[ .\-]\d{4}"  # (415) 555-2671
    r"|\d{3}(?P<sep>[.\-])\d{3}(?P=sep)\d{4}"  # 415-555-2671
    r")(?!\w|[ .\-]?\d)"
)

_DIGIT = re.compile(r"\d")
# Where an address, card or phone number can start: a digit (or + or parenthesis) that nothing word-like precedes.
# Written with the look-behind after the first character, so that ``re`` tries only where that character is, not
# everywhere; each full pattern below is then tried only there (``anchored``), with the same matches as a scan.
_IPV4 = re.compile(r"\d(?<![\w.\-]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w\-]|\.\d)")
_CARD_START = re.compile(r"\d(?<![\w.\-+*/^%]\d)(?=\d{3}[ \-]?\d{4})")  # every card starts dddd dddd
_PHONE_START = re.compile(r"[+(\d](?<![\w+.\-/=#:][+(\d])"  # then what each kind of number starts with
                          r"(?:(?<=\+)(?=\d)|(?<=\()(?=\d{3}\))|(?<=\d)(?=\d\d[.\-]\d{3}[.\-]\d{4}))")
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|\bversion|\bver\.?|\brelease|[=<>~^!]=?)[ \t:=\"']*$")
# The same look-behind after the first character; a digit must be in the run, at its start or later.
_IPV6 = re.compile(r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])(?:(?<=\d)|(?=[0-9A-Fa-f:]*\d))[0-9A-Fa-f:]{2,38}(?![\w:.])")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_RUN_BEFORE = re.compile(r"[0-9A-Fa-f:]*\Z")  # searched up to a hint: the run of hex digits and colons it ends

_CARD = re.compile(
    r"(?<![\w.\-+*/^%])(?:(?:4\d{3}|5[1-5]\d{2}|2[2-7]\d{2}|6011|65\d{2})\d{12}|3[47]\d{13}"  # plain: known prefixes
    r"|[2-6]\d{3}(?P<sep>[ \-])\d{4}(?P=sep)\d{4}(?P=sep)\d{4}(?:(?P=sep)\d{3})?"  # 4-4-4-4(-3)
    r"|3\d{3}(?P<amex>[ \-])\d{6}(?P=amex)\d{5})"  # 4-6-5
    r"(?!\w|[ .\-]?\d|[*/^%])"
)
_NUMBER_TOKEN = re.compile(r"^-?\d*\.\d+(?:\.\d+)*$")


def _email_hits(text: str) -> Iterator[Found]:
    at = text.find("@")
    while at >= 0:
        found = _email_at(text, at)
        if found:
            yield found
        at = text.find("@", at + 1)


def _email_at(text: str, at: int) -> Found | None:
    domain = _DOMAIN.match(text, at + 1)
    local = _LOCAL.search(text, max(0, at - 64), at)
    if not domain or not local:
        return None
    start = local.start()
    if start and _NOT_BEFORE_LOCAL.match(text[start - 1]):
        return None
    if local.group().lower() in _ROLE_LOCALS or _RESERVED_DOMAINS.search(domain.group()):
        return None
    tld = domain.group("tld").lower()
    if tld in _FILE_TLDS or (len(tld) > 2 and tld not in _GENERIC_TLDS):
        return None
    token_start = max(text.rfind(c, 0, start) for c in " \t\n\"'<>(),;`[]{}") + 1
    if "://" in text[token_start:start]:  # https://user@host: a login, not an address
        return None
    return start, domain.end(), "email", text[start : domain.end()]


def _phone_hits(text: str) -> Iterator[Found]:
    for m in anchored(_PHONE, text, (c.start() for c in _PHONE_START.finditer(text))):
        digits = sum(c.isdigit() for c in m.group())
        if 8 <= digits <= 15:
            yield m.start(), m.end(), "phone", m.group()


# Public resolvers everyone types (ping 8.8.8.8, dig @1.1.1.1): infrastructure, not anyone's address.
_WELL_KNOWN = frozenset("8.8.8.8 8.8.4.4 1.1.1.1 1.0.0.1 9.9.9.9 149.112.112.112 208.67.222.222 208.67.220.220 "
                        "2001:4860:4860::8888 2001:4860:4860::8844 2606:4700:4700::1111 2606:4700:4700::1001".split())


def _public(address: str) -> bool:
    if address in _WELL_KNOWN:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast


def _ip_hits(text: str) -> Iterator[Found]:
    if "." in text:
        for m in _IPV4.finditer(text):
            line_start = text.rfind("\n", 0, m.start()) + 1
            if _VERSION_BEFORE.search(text[max(line_start, m.start() - 16) : m.start()]):
                continue
            if _among_numbers(text, m.start(), m.end()) or all(len(o) == 1 for o in m.group().split(".")):
                continue
            if _public(m.group()):
                yield m.start(), m.end(), "ip_address", m.group()
    yield from _ipv6_hits(text)


def _ipv6_hits(text: str) -> Iterator[Found]:
    for m in _ipv6_runs(text):
        value = m.group()
        colons = value.count(":")  # eight groups, or fewer around "::" (no dotted tail: no "." here)
        if (colons == 7 or "::" in value) and sum(1 for g in value.split(":") if g) >= 3 and _public(value):
            yield m.start(), m.end(), "ip_address", value


def _ipv6_runs(text: str) -> Iterator[re.Match]:
    """``_IPV6``'s matches that hold two colons at most four hex digits apart (``_IPV6_HINT``), in order.

    Every address ``_ipv6_hits`` keeps holds one (``::``, or eight groups of one to four digits), and
    ``_IPV6`` matches only whole runs of hex digits and colons: so the match is tried only at the start
    of the run around each hint, not at every hex digit of the text (code is full of ``a`` to ``f``).
    """
    if "::" not in text and text.count(":") < 7:
        return
    tried = -1
    for hint in _IPV6_HINT.finditer(text):
        start = _RUN_BEFORE.search(text, max(0, hint.start() - 39), hint.start()).start()
        if start == tried:
            continue
        tried = start
        match = _IPV6.match(text, start)
        if match:
            yield match


def _among_numbers(text: str, start: int, end: int) -> bool:
    """Whether the next or previous word is a decimal number that is no address (SVG paths, tables)."""
    before = text[max(0, start - 40) : start].rstrip(" ,\t").rsplit(None, 1)
    after = text[end : end + 40].lstrip(" ,\t").split(None, 1)
    for word in (before[-1] if before else "", after[0] if after else ""):
        word = word.strip(",")
        if _NUMBER_TOKEN.match(word) and word.count(".") != 3:
            return True
    return False


def luhn(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (every card number does)."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_hits(text: str) -> Iterator[Found]:
    for m in anchored(_CARD, text, (c.start() for c in _CARD_START.finditer(text))):
        value = m.group()
        if luhn(re.sub(r"[ \-]", "", value)):
            yield m.start(), m.end(), "payment_card", value


def pii_hits(text: str) -> list[Found]:
    """Every e-mail address, phone number, public IP address and card number in ``text`` (see the module docstring)."""
    out = list(_email_hits(text))
    if _DIGIT.search(text):  # every pattern below needs one
        out += _card_hits(text)
        out += _phone_hits(text)
        out += _ip_hits(text)
    return out
