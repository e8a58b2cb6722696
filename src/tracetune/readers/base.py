"""What every reader provides, and the line-level helpers they share.

A reader is a module with a ``FORMAT`` name, ``sniff(first_lines) -> bool``
and ``read(path) -> list[Session]``. It never writes to the file it reads and
never raises on bad content: each problem becomes a counted ``ReadWarning``
with file and line. Only a file that cannot be read at all (missing, a
directory, binary, not text) raises ``UnreadableFileError``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from tracetune.conversation.types import ReadWarning, Session, WarningKind
from tracetune.errors import UnreadableFileError


class Reader(Protocol):
    FORMAT: str

    def sniff(self, first_objects: list[dict[str, Any]]) -> bool: ...

    def read(self, path: Path) -> list[Session]: ...


def open_text(path: Path) -> str:
    """The whole file as text (``.gz`` transparently), or ``UnreadableFileError``."""
    path = Path(path)
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory", hint="pass files, or a directory to walk it")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UnreadableFileError(f"{path}: cannot be read ({exc})") from exc
    if b"\x00" in raw[:8192]:
        raise UnreadableFileError(f"{path}: is a binary file, not a JSONL session")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"{path}: is not UTF-8 text (byte {exc.start})", hint="session files are UTF-8 JSONL"
        ) from exc


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
        self.items.append(ReadWarning(kind=kind, message=message, path=self.path, line=line))


def iter_json_lines(text: str, sink: WarningSink) -> Iterator[Line]:
    """Each non-blank line parsed as a JSON object; bad lines become warnings.

    A last line that does not parse is reported as ``truncated_line`` (the
    usual sign of a session written while the agent was killed).
    """
    lines = text.split("\n")
    last = max((i for i, s in enumerate(lines) if s.strip()), default=-1)
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            kind: WarningKind = "truncated_line" if i == last and not text.endswith("\n") else "invalid_json"
            sink.warn(kind, f"line is not valid JSON ({exc.msg}); skipped", i + 1)
            continue
        if not isinstance(value, dict):
            sink.warn("not_an_object", f"line is a JSON {type(value).__name__}, not an object; skipped", i + 1)
            continue
        yield Line(i + 1, value)


def first_objects(path: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The first few JSON objects of a file, for format detection (bad lines skipped)."""
    text = open_text(path)
    out: list[dict[str, Any]] = []
    for raw in text.split("\n"):
        if len(out) >= limit:
            break
        raw = raw.strip()
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


ReaderFn = Callable[[Path], list[Session]]
