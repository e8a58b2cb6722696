"""Home directories and the user names in them, anonymised consistently.

``/Users/alice/x`` and ``/home/alice/x`` become ``<home>/x`` (``/home/user``
by default); ``C:\\Users\\alice\\x`` keeps its drive and separators and becomes
``C:\\Users\\user\\x``. Every user name seen in a home path is also replaced
where it stands alone, as far as that is safe:

- a distinctive name (7+ characters, or holding a digit or an upper-case
  letter: ``badlogic``, ``jdoe42``) wherever it is a whole word (``whoami``
  output, ``github.com/badlogic``, prose);
- a short lower-case name (``mario``, ``codex``), which is too often an
  ordinary word or a tool's name, only in the places a user name sits:
  a line of its own (``whoami``), ``NAME@host``, ``~NAME``, and pi's session
  folder names (``--Users-NAME-work--``);
- a name given in ``RedactOptions.usernames`` wherever it is a whole word.

Not touched: generic accounts (``root``, ``runner``, ``ubuntu``, ``Shared``,
agent sandboxes such as ``codex``; they name nobody), names shorter than
three characters, and a path whose prefix is glued to a word
(``/var/home/x``, ``example.com/home/about``).
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from tracetune.prepare.redact_match import anchored, occurrences

GENERIC_USERS = frozenset(
    "root admin administrator user users ubuntu debian runner ec2-user guest default public shared "
    "all node app git dev test vagrant docker jenkins linuxbrew www-data codex claude agent sandbox coder "
    "workspace project home work build ci".split()
)

_NAME = r"[\w.\-]+"  # \w: letters of any script, so /Users/josé is one name
# The look-behind sits after the first "/", so that ``re`` tries only where a "/" is (same matches as before it).
_POSIX_HOME = re.compile(r"/(?<![\w.\-~]/)(?:Users|home)/(?P<name>" + _NAME + r")(?![\w.\-])")
# A Windows name may hold spaces (C:\Users\Jane Doe\...): taken whole when a separator follows.
_WINDOWS_HOME = re.compile(
    r"(?<![^\W_])(?P<drive>[A-Za-z]):(?P<sep>\\\\|\\|/)(?i:Users)(?P=sep)"
    r"(?:(?P<spaced>" + _NAME + r"(?: " + _NAME + r")+)(?=(?P=sep))|(?P<name>" + _NAME + r")(?![\w.\-]))"
)
_ALNUM = r"[^\W_]"  # a letter or digit of any script
_MIN_NAME = 3


def _may_hold_home(text: str) -> bool:
    return "/home/" in text or "Users" in text or "users" in text or "USERS" in text


def _drives(text: str) -> list[int]:
    """Where a Windows home path can start: the drive letter before each ``:\\`` or ``:/``."""
    return sorted(at - 1 for sep in (":\\", ":/") for at in occurrences(text, sep) if at)


def _sub_at(regex: re.Pattern[str], repl: Callable[[re.Match[str]], str | None], text: str,
            starts: Iterable[int]) -> tuple[str, int]:
    """``regex.subn(repl, text)`` when no match can start outside ``starts`` (ascending): tried only there.

    A match ``repl`` answers None for is left as it is and not counted.
    """
    out, last, count = [], 0, 0
    for match in anchored(regex, text, starts):
        new = repl(match)
        if new is None:
            continue
        out.append(text[last : match.start()])
        out.append(new)
        last = match.end()
        count += 1
    if not count:
        return text, 0
    out.append(text[last:])
    return "".join(out), count


def _distinctive(name: str) -> bool:
    """Unlikely to be an ordinary word: long, or holding a digit or a capital."""
    return len(name) >= 7 or any(c.isdigit() or c.isupper() for c in name)


class HomePaths:
    """Learns user names from home paths, then rewrites texts; counts what it replaced."""

    def __init__(self, home: str = "/home/user", user: str = "user", standalone: bool = True, names: list[str] = ()):
        self.home = home
        self.user = user
        self.standalone = standalone
        self.names: set[str] = set(names)
        self.given = frozenset(names)  # named by the user: replaced as whole words, however short
        self.home_paths = 0
        self.mentions = 0
        self._names_re: re.Pattern[str] | None = None

    def keep(self, name: str) -> bool:
        """Whether ``name`` is left as it is: the replacement user name itself or a generic account."""
        return name == self.user or name.lower() in GENERIC_USERS

    def learn(self, text: str) -> None:
        """Remember the user name of each home path in ``text`` (kept names aside)."""
        if not _may_hold_home(text):
            return
        for matches in (_POSIX_HOME.finditer(text), anchored(_WINDOWS_HOME, text, _drives(text))):
            for match in matches:
                name = self._name(match)
                if name not in self.names and not self.keep(name):
                    self.names.add(name)
                    self._names_re = None

    def apply(self, text: str) -> str:
        """``text`` with home paths rewritten and, when ``standalone``, the learned user names replaced where safe."""
        text, homes, mentions = self.rewrite(text)
        self.home_paths += homes
        self.mentions += mentions
        return text

    def rewrite(self, text: str) -> tuple[str, int, int]:
        """(``apply``'s text, home paths rewritten, names replaced), the counts left alone."""
        homes = mentions = 0
        if _may_hold_home(text):
            def posix(match: re.Match[str]) -> str:
                nonlocal homes
                new = self._posix(match)
                homes += new is not None
                return match.group() if new is None else new

            text = _POSIX_HOME.sub(posix, text)
            text, windows = _sub_at(_WINDOWS_HOME, self._windows, text, _drives(text))
            homes += windows
        if self.standalone and any(name in text for name in self.names):
            starts = sorted({at for name in self.names for at in occurrences(text, name)})
            text, mentions = _sub_at(self._names_regex(), lambda m: self.user, text, starts)
        return text, homes, mentions

    def _names_regex(self) -> re.Pattern[str]:
        if self._names_re is None:
            names = sorted((n for n in self.names if len(n) >= _MIN_NAME), key=len, reverse=True)
            is_wide = {n: _distinctive(n) or n in self.given for n in names}
            wide = "|".join(re.escape(n) for n in names if is_wide[n]) or "(?!)"
            narrow = "|".join(re.escape(n) for n in names if not is_wide[n]) or "(?!)"
            self._names_re = re.compile(  # every branch starts at a name: ``apply`` tries it only there
                rf"(?<!{_ALNUM})(?:{wide})(?!{_ALNUM})"
                rf"|(?<=~)(?:{narrow})(?!{_ALNUM})"  # ~alice
                rf"|(?<![\w./-])(?:{narrow})(?=@{_ALNUM})"  # alice@host
                rf"|(?:(?<=-Users-)|(?<=-home-))(?:{narrow})(?=-)"  # pi's --Users-alice-work--
                rf"|(?m:^(?:{narrow})(?=[ \t]*$))"  # whoami
            )
        return self._names_re

    @staticmethod
    def _name(match: re.Match[str]) -> str:
        return match.group("name") or match.group("spaced")

    def _posix(self, match: re.Match[str]) -> str | None:
        if self.keep(match.group("name")):
            return None
        return self.home

    def _windows(self, match: re.Match[str]) -> str | None:
        if self.keep(self._name(match)):
            return None
        sep = match.group("sep")
        return f"{match.group('drive')}:{sep}Users{sep}{self.user}"
