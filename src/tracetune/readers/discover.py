"""Walk files and directories to the session files in them, and read them all.

Directories are walked recursively (pi's ``~/.pi/agent/sessions/--cwd--/``
layout, Claude Code's ``~/.claude/projects/<project>/``, Codex's
``~/.codex/sessions/YYYY/MM/DD/``), taking ``*.jsonl`` and ``*.jsonl.gz``,
and the shards of trace datasets (``*.parquet``, a ``save_to_disk`` folder's
``*.arrow``; JSONL shards are told apart by their ``trace`` key): each row is
then a source of its own (see ``datasets_source``).
A file that cannot be read is recorded as an error for that file; the
others are still read. Symlinked files are followed, symlinked directories
inside a walked directory are not (so a symlink loop cannot trap the walk).
FIFOs, sockets, devices, broken symlinks and symlink loops (given as a path,
or met with a session file's name during a walk) are recorded as errors
("skipped") without being opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from tracetune.conversation.types import Message, ReadWarning, Session
from tracetune.errors import TracetuneError, UnreadableFileError
from tracetune.readers.base import MAX_DEPTH, deeper_than, not_regular
from tracetune.readers.datasets_source import SHARD_SUFFIXES, is_dataset_shard, read_shard
from tracetune.readers.hub import ResolvedSource, is_hub_uri, resolve_hub_source
from tracetune.readers.registry import ReadOptions, detect_format, reader_for

SESSION_SUFFIXES = (".jsonl", ".jsonl.gz")


def is_session_file(path: Path) -> bool:
    """A session file, or a trace dataset's shard, by its name."""
    return path.name.endswith(SESSION_SUFFIXES + SHARD_SUFFIXES)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Session files under the given paths, sorted, each once (see ``discover_files`` for what is skipped)."""
    return discover_files(paths)[0]


def discover_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileError]]:
    """Session files under the given paths (sorted, each once), and the paths skipped unopened with why.

    A given path that does not exist at all is a ``TracetuneError`` (a typo);
    one that exists but is no regular file is skipped.
    """
    found: list[Path] = []
    skipped: list[FileError] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if is_session_file(p) and not p.is_file():
                    why = not_regular(p)
                    if why and why != "is a directory":
                        skipped.append(FileError(str(p), f"{p}: {why}; skipped"))
                elif is_session_file(p):
                    found.append(p)
        elif path.exists() or path.is_symlink():
            why = not_regular(path)
            if why:
                skipped.append(FileError(str(path), f"{path}: {why}; skipped"))
            else:
                found.append(path)
        else:
            raise TracetuneError(f"{path}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for p in found:
        try:
            key = p.resolve()
        except (OSError, RuntimeError):  # a loop that appeared since
            key = p.absolute()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    named = {str(Path(e.path).absolute()): e for e in skipped}  # each skipped path once too
    return unique, list(named.values())


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
        """The warnings of every session read, in order."""
        return [w for s in self.sessions for w in s.warnings]

    def extend(self, other: "ReadResult") -> None:
        """Add the sessions, errors, formats and sources of ``other`` to this result."""
        self.sessions.extend(other.sessions)
        self.errors.extend(other.errors)
        self.formats.update(other.formats)
        self.sources.extend(other.sources)


def read_file(path: Path, fmt: str | None = None, options: ReadOptions | None = None) -> tuple[str, list[Session]]:
    """(format name, sessions) of one file, its format detected unless ``fmt`` is given."""
    name = fmt or detect_format(path)
    reader = reader_for(name)
    return name, [_shallow(s) for s in reader.read(path, **(options or ReadOptions()).for_reader(reader))]


def _shallow(session: Session) -> Session:
    """``session`` without tool-call arguments nested deeper than ``MAX_DEPTH`` (each dropped with a warning).

    Lines that deep are skipped while parsing; this catches arguments a reader
    parsed out of a JSON string (Codex, messages), which code downstream
    (redaction, templates) would otherwise overflow on.
    """
    deep = {id(c) for e in session.episodes for m in e.messages for c in m.tool_calls
            if deeper_than(c.arguments, MAX_DEPTH)}
    if not deep:
        return session
    done: dict[int, Message] = {}
    warnings = list(session.warnings)

    def message(m: Message) -> Message:
        if id(m) not in done:
            calls = []
            for c in m.tool_calls:
                if id(c) in deep:
                    warnings.append(ReadWarning("bad_arguments", f"the arguments of tool call {c.id} ({c.name}) nest "
                                                f"deeper than {MAX_DEPTH} levels; dropped", session.source))
                    c = replace(c, arguments={}, arguments_raw=None)
                calls.append(c)
            done[id(m)] = replace(m, tool_calls=tuple(calls))
        return done[id(m)]

    episodes = tuple(replace(e, messages=tuple(message(m) for m in e.messages)) for e in session.episodes)
    return replace(session, episodes=episodes, warnings=tuple(warnings))


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
    options: ReadOptions | None = None,
) -> ReadResult:
    """Read every session file under ``paths`` (local, or ``hf://datasets/...``), with the readers' ``options``.

    Unreadable and skipped files become ``errors`` (one line each); the others are still read.
    """
    local, sources = resolve_sources(paths, token=token)
    result = ReadResult(sources=sources)
    files, skipped = discover_files(local)
    result.errors.extend(skipped)
    for path in files:
        try:
            result.extend(read_one(path, fmt, options))
        finally:
            if on_file:
                on_file(path)
    return result


def read_one(path: Path, fmt: str | None = None, options: ReadOptions | None = None) -> ReadResult:
    """One discovered file (a session file or a dataset shard) on its own; a file that cannot be read is an error.

    ``read_paths`` is this over every file; ``prepare`` calls it one file at a time to hold one file in memory.
    """
    result = ReadResult()
    try:
        if is_dataset_shard(path):
            _add_rows(result, read_shard(path, fmt, lambda p, f: read_file(p, f, options)))
            return result
        name, sessions = read_file(path, fmt, options)
    except UnreadableFileError as exc:
        result.errors.append(FileError(str(path), str(exc)))
    except RecursionError:  # a reader's own parsing (arguments held as a JSON string) went too deep
        result.errors.append(FileError(str(path), f"{path}: holds JSON nested too deeply to read; skipped"))
    else:
        result.formats[str(path)] = name
        result.sessions.extend(sessions)
    return result


def _add_rows(result: ReadResult, rows) -> None:
    """A dataset shard's rows: each one a source (a file, as ``inspect`` counts them) or an error."""
    for row in rows:
        if row.error is not None:
            result.errors.append(FileError(row.source, row.error))
        else:
            result.formats[row.source] = row.format or "unknown"
            result.sessions.extend(row.sessions)
