"""Walk files and directories to the session files in them, and read them all.

Directories are walked recursively (pi's ``~/.pi/agent/sessions/--cwd--/``
layout, Claude Code's ``~/.claude/projects/<project>/``, Codex's
``~/.codex/sessions/YYYY/MM/DD/``), taking ``*.jsonl`` and ``*.jsonl.gz``.
A file that cannot be read is recorded as an error for that file; the
others are still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tracetune.conversation.types import ReadWarning, Session
from tracetune.errors import TracetuneError, UnreadableFileError
from tracetune.readers.hub import ResolvedSource, is_hub_uri, resolve_hub_source
from tracetune.readers.registry import detect_format, reader_for

SESSION_SUFFIXES = (".jsonl", ".jsonl.gz")


def is_session_file(path: Path) -> bool:
    return path.name.endswith(SESSION_SUFFIXES)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Session files under the given paths, sorted, each once."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and is_session_file(p))
        elif path.exists():
            found.append(path)
        else:
            raise TracetuneError(f"{path}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


@dataclass
class FileError:
    path: str
    message: str


@dataclass
class ReadResult:
    sessions: list[Session] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # path -> format
    sources: list[ResolvedSource] = field(default_factory=list)  # Hub datasets read, pinned to a commit

    @property
    def warnings(self) -> list[ReadWarning]:
        return [w for s in self.sessions for w in s.warnings]


def read_file(path: Path, fmt: str | None = None) -> tuple[str, list[Session]]:
    name = fmt or detect_format(path)
    return name, reader_for(name).read(path)


def resolve_sources(paths: Iterable[str | Path], token: str | None = None) -> tuple[list[Path], list[ResolvedSource]]:
    """Local paths for every source: ``hf://datasets/...`` addresses are downloaded (cached) first."""
    local: list[Path] = []
    resolved: list[ResolvedSource] = []
    for raw in paths:
        if is_hub_uri(raw):
            source = resolve_hub_source(str(raw), token=token)
            resolved.append(source)
            local.append(source.local_path)
        else:
            local.append(Path(raw))
    return local, resolved


def read_paths(
    paths: Iterable[str | Path],
    fmt: str | None = None,
    on_file: Callable[[Path], None] | None = None,
    token: str | None = None,
) -> ReadResult:
    """Read every session file under ``paths`` (local, or ``hf://datasets/...``).

    Unreadable files become ``errors``; the others are still read.
    """
    local, sources = resolve_sources(paths, token=token)
    result = ReadResult(sources=sources)
    for path in discover(local):
        try:
            name, sessions = read_file(path, fmt)
        except UnreadableFileError as exc:
            result.errors.append(FileError(str(path), str(exc)))
        else:
            result.formats[str(path)] = name
            result.sessions.extend(sessions)
        if on_file:
            on_file(path)
    return result
