"""What every reader provides, and the line-level helpers they share.

A reader is a module with a ``FORMAT`` name, ``sniff(first_lines) -> bool``
and ``read(path) -> list[Session]``. It never writes to the file it reads and
never raises on bad content: each problem becomes a counted ``ReadWarning``
with file and line. Only a file that cannot be read at all (missing, a
directory, not a regular file, binary, too big) raises ``UnreadableFileError``.

Hostile content is taken line by line, never by rejecting the whole file:

- a UTF-8 byte-order mark at the start is dropped (the header line is kept);
- bytes that are not UTF-8 (a latin-1 ``é``) become U+FFFD in their line,
  which is kept and warned about (``bad_encoding``, one warning per line);
  a file where most lines hold such bytes is in another encoding, and refused;
- a line nested deeper than ``MAX_DEPTH`` levels, or longer than
  ``MAX_LINE_CHARS``, is skipped with an ``invalid_json`` warning: deeper
  values would overflow the recursive code downstream (JSON, templates,
  redaction), and no agent writes them;
- FIFOs, sockets and devices are refused before they are opened (reading a
  FIFO blocks for ever), and so is a file over ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from tracetune.conversation.types import ReadWarning, Session, WarningKind
from tracetune.errors import UnreadableFileError

MAX_DEPTH = 128  # nesting levels a line may have (agents write fewer than 20)
MAX_LINE_CHARS = 64 * 2**20  # one line (a pasted image in base64 is a few MB)
MAX_FILE_BYTES = 2 * 2**30  # a whole file, after decompression

_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8
_BOM = "\ufeff"


class Reader(Protocol):
    FORMAT: str

    def sniff(self, first_objects: list[dict[str, Any]]) -> bool:
        """Whether the first JSON objects of a file look like this reader's format."""

    def read(self, path: Path) -> list[Session]:
        """Every ``Session`` in the file at ``path``; bad content becomes warnings (an unreadable file raises)."""


def not_regular(path: Path) -> str | None:
    """Why ``path`` is not a file to open (a FIFO, a socket, a symlink loop...), or None. Opens nothing."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if Path(path).is_symlink():
            return "is a broken symlink or a symlink loop"
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return f"is {name}, not a regular file"
    return "is not a regular file"


def _read_bytes(path: Path, size: int = MAX_FILE_BYTES + 1) -> bytes:
    """Up to ``size`` bytes of the file (decompressed when ``.gz``)."""
    # O_NONBLOCK: should the path have become a FIFO since it was checked, opening it cannot block
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFileError(f"{path}: is not a regular file")
        if Path(path).suffix == ".gz":
            with gzip.GzipFile(fileobj=handle) as unzipped:
                return unzipped.read(size)
        return handle.read(size)


def open_text(path: Path) -> str:
    """The whole file as text (``.gz`` transparently), or ``UnreadableFileError``.

    Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``);
    ``iter_json_lines`` replaces and counts them line by line.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise UnreadableFileError(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory", hint="pass files, or a directory to walk it")
    why = not_regular(path)
    if why:
        raise UnreadableFileError(f"{path}: {why}; skipped")
    try:
        raw = _read_bytes(path)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableFileError(f"{path}: cannot be read ({exc})") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise UnreadableFileError(f"{path}: is over {MAX_FILE_BYTES // 2**30} GiB; too big to read at once")
    if b"\x00" in raw[:8192]:
        raise UnreadableFileError(f"{path}: is a binary file, not a JSONL session")
    try:
        text = raw.decode("utf-8")  # nearly always: then no byte needs escaping and none is looked for
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="surrogateescape")
        if _BAD_BYTE.search(text):
            _refuse_other_encodings(path, text)
    return text[1:] if text.startswith(_BOM) else text


def _refuse_other_encodings(path: Path, text: str) -> None:
    """A stray byte is read line by line; a file mostly in another encoding is refused (it would come out garbled)."""
    lines = [line for line in text.split("\n") if line.strip()]
    bad = sum(1 for line in lines if _BAD_BYTE.search(line))
    if bad * 2 > len(lines):
        first = len(text[: _BAD_BYTE.search(text).start()].encode("utf-8", errors="surrogateescape"))
        raise UnreadableFileError(
            f"{path}: is not UTF-8 text ({bad} of {len(lines)} lines hold other bytes, the first at byte {first}); "
            "session files are UTF-8 JSONL"
        )


@dataclass
class Line:
    number: int  # 1-based
    value: dict[str, Any]


class WarningSink:
    """Collects warnings for one file; readers call ``warn`` and never print."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self.items: list[ReadWarning] = []

    def warn(self, kind: WarningKind, message: str, line: int | None = None) -> None:
        """Record one ``ReadWarning`` of ``kind`` for this file, at ``line`` when known."""
        self.items.append(ReadWarning(kind=kind, message=message, path=self.path, line=line))


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests more than ``limit`` lists and objects (no recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_line(raw: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why the line was skipped). Never raises."""
    if len(raw) > MAX_LINE_CHARS:
        return None, f"line is {len(raw) / 2**20:.0f} MB, over the {MAX_LINE_CHARS // 2**20} MB a line may hold"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"line is not valid JSON ({exc.msg})"
    except RecursionError:
        return None, f"line is nested deeper than {MAX_DEPTH} levels"
    # a line with few brackets cannot be deep: count them (fast) before walking the value
    if raw.count("[") + raw.count("{") > MAX_DEPTH and deeper_than(value, MAX_DEPTH):
        return None, f"line is nested deeper than {MAX_DEPTH} levels"
    return value, None


def _bad_bytes(raw: str) -> tuple[str, int]:
    """``raw`` with each byte that was not UTF-8 made U+FFFD, and how many there were."""
    return _BAD_BYTE.subn("\ufffd", raw)


def iter_json_lines(text: str, sink: WarningSink) -> Iterator[Line]:
    """Each non-blank line parsed as a JSON object; bad lines become warnings.

    A last line that does not parse is reported as ``truncated_line`` (the
    usual sign of a session written while the agent was killed).
    """
    lines = text.split("\n")
    last = max((i for i, s in enumerate(lines) if s.strip()), default=-1)
    suspect = _BAD_BYTE.search(text) is not None
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        if suspect:
            raw, bad = _bad_bytes(raw)
            if bad:
                sink.warn("bad_encoding", f"line holds {bad} byte(s) that are not UTF-8; read as U+FFFD", i + 1)
        value, why = parse_line(raw)
        if why is not None:
            truncated = i == last and not text.endswith("\n") and why.startswith("line is not valid JSON")
            sink.warn("truncated_line" if truncated else "invalid_json", f"{why}; skipped", i + 1)
            continue
        if not isinstance(value, dict):
            sink.warn("not_an_object", f"line is a JSON {type(value).__name__}, not an object; skipped", i + 1)
            continue
        yield Line(i + 1, value)


#: ``first_objects`` looks in this many bytes at the start of a file before it reads the whole file.
HEAD_BYTES = 256 * 1024


def first_objects(path: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The first few JSON objects of a file, for format detection (bad lines skipped).

    Found in the whole lines of the file's first ``HEAD_BYTES`` when they hold ``limit`` of them
    (a plain UTF-8 file: nearly always), so that sniffing a file does not read all of it.
    """
    head = _head_lines(path)
    if head is not None:
        found = _objects(head, limit)
        if len(found) >= limit:
            return found
    return _objects(open_text(path).split("\n"), limit)


def _objects(lines, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in lines:
        if len(out) >= limit:
            break
        raw = raw.strip()
        if not raw:
            continue
        value, _ = parse_line(_bad_bytes(raw)[0])
        if isinstance(value, dict):
            out.append(value)
    return out


def _head_lines(path: Path) -> list[str] | None:
    """The whole lines in the first ``HEAD_BYTES`` of a UTF-8 file (decompressed); None where ``open_text`` decides."""
    if not_regular(path):
        return None
    try:
        raw = _read_bytes(path, HEAD_BYTES)
    except (OSError, EOFError, zlib.error, UnreadableFileError):
        return None
    cut = raw.rfind(b"\n")
    if cut < 0 or b"\x00" in raw[:8192]:
        return None
    try:
        text = raw[:cut].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return (text[1:] if text.startswith(_BOM) else text).split("\n")


ReaderFn = Callable[[Path], list[Session]]
