"""Trace datasets as sources: ``datasets`` ``save_to_disk`` folders, parquet shards, JSONL shards.

Hugging Face ``datasets`` loads agent session files as one row per file: the
raw file text in a ``trace`` column (``Json`` feature: stored JSON-encoded,
decoded here), teich-converted ``messages`` and ``tools`` beside it, and the
original ``file_path``. Such a dataset may come back as a ``save_to_disk``
folder (``data-*.arrow`` files), parquet shards (``push_to_hub``,
``to_parquet``) or JSONL shards (``to_json``).

What is read, per row:

- a ``trace`` is the session file itself (writing it back gives the original
  bytes): it is read **exactly**, by the same reader as the raw file, its
  format detected from the text (or forced with ``--format``). Each row is
  one source, named ``SHARD::FILE_PATH`` (``SHARD::row-N`` without a
  ``file_path``), so ``inspect`` counts one file per row, as for the files;
- a row with no ``trace`` but ``messages`` (and optional ``tools``) goes
  through the messages reader, and every Session it gives carries a
  ``lossy_messages_source`` warning: the conversion already dropped what the
  raw trace held (branches, compactions, sidechains, exact tool results);
- a row with neither is an error for that row; the others are still read.

The rows are written one at a time to a private temporary folder and read
from there (the readers take files); nothing is written beside the shard.
Only ``pyarrow`` is imported, and only when a shard is met: reading traces
never loads ``datasets`` or torch. Not covered: other ``datasets`` formats
(csv, lance, webdataset...), and a ``trace`` that holds one of several
sessions of a file (Hermes rows): such a row is read as its own file.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from tracetune.conversation.types import ReadWarning, Session
from tracetune.errors import UnreadableFileError
from tracetune.readers.base import WarningSink, first_objects, iter_json_lines, not_regular, open_text

SHARD_SUFFIXES = (".parquet", ".arrow")
TRACE, MESSAGES, TOOLS = "trace", "messages", "tools"
NAME_COLUMNS = ("file_path", "path", "file_name", "filename")  # the first one present names a row
DATASET_COLUMNS = ("harness", "file_path", MESSAGES)  # beside a `trace` key, mark a JSONL line as a dataset row
LOSSY = "lossy_messages_source"
_BAD = "\0bad"  # key of a row that could not be parsed (a JSONL shard's broken line); never a column name

ReadFile = Callable[[Path, "str | None"], "tuple[str, list[Session]]"]


@dataclass
class RowRead:
    """What one row (or a shard's messages-only rows together) gave: its sessions, or why not."""

    source: str
    format: str | None = None
    sessions: list[Session] = field(default_factory=list)
    error: str | None = None


def is_shard_file(path: Path) -> bool:
    """A parquet or arrow file (a ``save_to_disk`` folder holds ``data-*.arrow``)."""
    return path.name.endswith(SHARD_SUFFIXES)


def is_dataset_shard(path: Path) -> bool:
    """A parquet / arrow shard, or a JSONL file whose records are dataset rows carrying a ``trace``."""
    if is_shard_file(path):
        return True
    objects = first_objects(path, limit=1)
    return bool(objects) and _is_trace_row(objects[0])


def _is_trace_row(obj: dict[str, Any]) -> bool:
    if TRACE not in obj:
        return False
    return isinstance(obj[TRACE], str) or any(k in obj for k in DATASET_COLUMNS)


def read_shard(path: Path, fmt: str | None, read_file: ReadFile) -> list[RowRead]:
    """Every row of one shard, read as described in the module docstring.

    Raises ``UnreadableFileError`` when the shard itself cannot be read or has
    neither a ``trace`` nor a ``messages`` column.
    """
    path = Path(path)
    results: list[RowRead] = []
    lossy: list[str] = []  # line i = row i's messages record, "" for the others (line numbers = rows)
    with tempfile.TemporaryDirectory(prefix="tracetune-rows-") as tmp:
        for i, row in enumerate(_rows(path)):
            text = trace_text(row.get(TRACE))
            name = _row_name(row, i)
            if _BAD in row:
                results.append(RowRead(f"{path}::{name}", error=f"{path}: {row[_BAD]}"))
                lossy.append("")
            elif text is not None:
                results.append(_read_trace(Path(tmp), i, text, f"{path}::{name}", fmt, read_file))
                lossy.append("")
            elif isinstance(row.get(MESSAGES), list):
                lossy.append(json.dumps({MESSAGES: _decoded(row[MESSAGES]), TOOLS: _decoded(row.get(TOOLS) or [])},
                                        ensure_ascii=False))
            else:
                results.append(RowRead(f"{path}::{name}", error=f"row {i} has neither a '{TRACE}' nor '{MESSAGES}'"))
                lossy.append("")
        if any(lossy):
            results.append(_read_messages(Path(tmp), path, lossy, read_file))
    return results


def _read_trace(tmp: Path, index: int, text: str, source: str, fmt: str | None, read_file: ReadFile) -> RowRead:
    folder = tmp / str(index)
    folder.mkdir()
    file = folder / _file_name(source.rsplit("::", 1)[1])
    file.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    try:
        name, sessions = read_file(file, fmt)
    except UnreadableFileError as exc:
        return RowRead(source, error=str(exc).replace(str(file), source))
    except RecursionError:
        return RowRead(source, error=f"{source}: holds JSON nested too deeply to read; skipped")
    finally:
        file.unlink()
    return RowRead(source, name, [_relabel(s, str(file), source) for s in sessions])


def _read_messages(tmp: Path, shard: Path, lines: list[str], read_file: ReadFile) -> RowRead:
    """The messages-only rows of a shard, as one messages JSONL (line N = row N-1), each Session flagged lossy."""
    file = tmp / f"{shard.name.split('.')[0] or 'rows'}.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
    source = str(shard)
    try:
        _, sessions = read_file(file, "messages")
    except UnreadableFileError as exc:
        return RowRead(source, error=str(exc).replace(str(file), source))
    note = ReadWarning(LOSSY, f"read from the dataset's '{MESSAGES}' column, not a raw '{TRACE}': what that "
                       "conversion dropped (branches, compactions, exact tool results) is not there", source)
    flagged = [replace(s, warnings=(note, *s.warnings)) for s in sessions]
    return RowRead(source, "messages", [_relabel(s, str(file), source) for s in flagged])


def _relabel(session: Session, tmp_path: str, source: str) -> Session:
    """``session`` named after its row instead of the temporary file it was read from."""
    warnings = tuple(replace(w, path=source) if w.path == tmp_path else w for w in session.warnings)
    return replace(session, source=source, warnings=warnings)


def _row_name(row: dict[str, Any], index: int) -> str:
    for column in NAME_COLUMNS:
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return f"row-{index}"


def _file_name(name: str) -> str:
    """A safe file name keeping the original's stem (readers take ids from it): no folders, no odd characters."""
    base = re.sub(r"[^\w.-]", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    base = base.removesuffix(".gz").removesuffix(".jsonl")[:120] or "row"
    return f"{base}.jsonl"


def trace_text(value: Any) -> str | None:
    """The session file's text held in a ``trace`` cell, or None.

    A ``Json`` column stores a multi-line text JSON-encoded (a quoted string)
    and a one-line text as it is; a plain string column holds the text itself.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="surrogateescape")
    if isinstance(value, str):
        if value.startswith('"'):
            try:
                decoded = json.loads(value)
            except ValueError:
                return value
            return decoded if isinstance(decoded, str) else value
        return value or None
    if isinstance(value, (dict, list)):  # a one-line trace a JSON reader already decoded
        return json.dumps(value, ensure_ascii=False) + "\n"
    return None


def _decoded(items: Any) -> Any:
    """``List(Json())`` cells hold each element JSON-encoded; plain struct lists are already values."""
    if not isinstance(items, list):
        return items
    out = []
    for item in items:
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                pass
        out.append(item)
    return out


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    why = not_regular(path)
    if why:
        raise UnreadableFileError(f"{path}: {why}; skipped")
    if not is_shard_file(path):
        yield from _jsonl_rows(path)
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets, a core dependency
        raise UnreadableFileError(f"{path}: reading dataset shards needs pyarrow", hint="pip install pyarrow") from exc
    try:
        if path.suffix == ".parquet":
            shard = pq.ParquetFile(path)
            columns = _columns(shard.schema_arrow.names, path)
            batches = shard.iter_batches(batch_size=64, columns=columns)
        else:
            batches = _arrow_batches(pa, path)
        for batch in batches:
            names = _columns(batch.schema.names, path)
            yield from batch.select(names).to_pylist()
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UnreadableFileError(f"{path}: not a dataset shard that can be read ({exc})") from exc


def _arrow_batches(pa: Any, path: Path) -> Iterator[Any]:
    """Record batches of an Arrow file: the IPC stream ``save_to_disk`` writes, or the IPC file format."""
    with pa.memory_map(str(path)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            source.seek(0)
            file = pa.ipc.open_file(source)
            for i in range(file.num_record_batches):
                yield file.get_batch(i)
            return
        yield from reader


def _columns(names: list[str], path: Path) -> list[str]:
    if TRACE not in names and MESSAGES not in names:
        raise UnreadableFileError(
            f"{path}: a dataset with neither a '{TRACE}' nor a '{MESSAGES}' column (it has {', '.join(names[:8])})",
            hint="trace datasets hold each session file's text in 'trace' (or converted 'messages' and 'tools')",
        )
    wanted = (TRACE, MESSAGES, TOOLS, *NAME_COLUMNS)
    return [n for n in names if n in wanted]


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Each line of a JSONL shard; a line that is no JSON object becomes a row holding only why (``_BAD``)."""
    sink = WarningSink(path)
    seen = 0
    for line in iter_json_lines(open_text(path), sink):
        for warning in sink.items[seen:]:
            yield {_BAD: f"line {warning.line}: {warning.message}"}
        seen = len(sink.items)
        yield line.value
    for warning in sink.items[seen:]:
        yield {_BAD: f"line {warning.line}: {warning.message}"}
