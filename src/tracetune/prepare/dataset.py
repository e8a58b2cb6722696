"""Writing the prepared dataset contract into a folder (see docs/architecture.md, "Prepare").

Everything is written into a temporary sibling folder first and renamed into
place at the end, so a crash never leaves half a dataset behind.
"""

from __future__ import annotations

import json
import pickle
from array import array
from pathlib import Path
from typing import Any, Iterator

from tracetune.errors import TracetuneError
from tracetune.prepare.windows import Example
from tracetune.util.files import atomic_write_json, replace_dir, temp_dir_for

#: Rows buffered by the Arrow writer at a time (datasets' default, 1,000, holds 1,000 windows as Python ints).
WRITER_BATCH = 64

COLUMNS = (
    "input_ids",
    "assistant_masks",
    "episode_id",
    "session_id",
    "family_id",
    "window",
    "num_tokens",
    "num_supervised",
    "messages",
    "tools",
)


#: Columns kept in memory for the report; the others go to the spill file.
LIGHT = ("episode_id", "session_id", "family_id", "window", "num_tokens", "num_supervised")
HEAVY = ("input_ids", "assistant_masks", "messages", "tools")


class Rows:
    """Rows of one split, column-wise. With ``spill`` (a file path) the token ids, masks and
    message JSON go to that file as they come and only the small columns stay in memory, so a
    split of any size costs a few hundred bytes a row here; without it everything is held (4 and
    1 bytes a token). ``columns`` gives every column either way (heavy ones read back by index)."""

    def __init__(self, spill: Path | None = None):
        self.spill = Path(spill) if spill else None
        self._light: dict[str, list[Any]] = {c: [] for c in LIGHT}
        self._held: dict[str, list[Any]] = {c: [] for c in HEAVY}
        self._offsets = array("q")
        self._handle = None
        if self.spill is not None:
            self._handle = self.spill.open("wb")
        self.columns = {**self._light, **{c: _Column(self, c) for c in HEAVY}}

    def add(self, example: Example, episode_id: str, session_id: str, family_id: str, tools: tuple[dict, ...]) -> None:
        """Append the row of one rendered example, with its episode, session and family ids and its tool definitions."""
        r = example.rendered
        self.add_row(array("i", r.ids), bytes(r.mask), episode_id, session_id, family_id, example.window,
                     r.num_tokens, r.num_supervised, json.dumps(list(example.messages), ensure_ascii=False),
                     json.dumps(list(tools), ensure_ascii=False))

    def add_row(self, ids: array, mask: bytes, episode_id: str, session_id: str, family_id: str, window: int,
                num_tokens: int, num_supervised: int, messages: str, tools: str) -> None:
        """Append one row from its column values (the heavy ones to the spill file when there is one)."""
        for name, value in zip(LIGHT, (episode_id, session_id, family_id, window, num_tokens, num_supervised)):
            self._light[name].append(value)
        heavy = (ids, mask, messages, tools)
        if self._handle is None:
            for name, value in zip(HEAVY, heavy):
                self._held[name].append(value)
            return
        blob = pickle.dumps((ids.tobytes(), mask, messages, tools), protocol=pickle.HIGHEST_PROTOCOL)
        self._offsets.append(self._handle.tell())
        self._handle.write(len(blob).to_bytes(8, "little"))
        self._handle.write(blob)

    def __len__(self) -> int:
        return len(self._light["num_tokens"])

    def heavy(self, i: int) -> tuple[array, bytes, str, str]:
        """Row ``i``'s ids, mask, messages JSON and tools JSON."""
        if self._handle is None:
            return tuple(self._held[name][i] for name in HEAVY)  # type: ignore[return-value]
        self._handle.flush()
        with self.spill.open("rb") as fh:
            fh.seek(self._offsets[i])
            return _unpack(fh.read(int.from_bytes(fh.read(8), "little")))

    def _heavy_rows(self) -> Iterator[tuple[array, bytes, str, str]]:
        if self._handle is None:
            yield from zip(*(self._held[name] for name in HEAVY))
            return
        self._handle.flush()
        with self.spill.open("rb") as fh:
            for _ in range(len(self)):
                yield _unpack(fh.read(int.from_bytes(fh.read(8), "little")))

    def records(self) -> Iterator[dict[str, Any]]:
        """Each row as a dict of every column in ``COLUMNS`` order, ids and masks as numpy arrays."""
        import numpy as np

        for i, (ids, mask, messages, tools) in enumerate(self._heavy_rows()):
            row = {name: self._light[name][i] for name in LIGHT}
            row.update(input_ids=np.frombuffer(ids, dtype=np.int32), assistant_masks=np.frombuffer(mask, dtype=np.int8),
                       messages=messages, tools=tools)
            yield {name: row[name] for name in COLUMNS}

    def close(self) -> None:
        """Close the spill file, if one is open."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class _Column:
    """A heavy column read back row by row (what ``report`` picks from)."""

    def __init__(self, rows: Rows, name: str):
        self.rows, self.index = rows, HEAVY.index(name)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Any:
        return self.rows.heavy(i)[self.index]


def _unpack(blob: bytes) -> tuple[array, bytes, str, str]:
    ids, mask, messages, tools = pickle.loads(blob)
    out = array("i")
    out.frombytes(ids)
    return out, mask, messages, tools


def features():
    """The ``datasets.Features`` of a prepared split: token ids, masks, ids, counts and JSON text columns."""
    from datasets import Features, Sequence, Value

    return Features(
        {
            "input_ids": Sequence(Value("int32")),
            "assistant_masks": Sequence(Value("int8")),
            "episode_id": Value("string"),
            "session_id": Value("string"),
            "family_id": Value("string"),
            "window": Value("int32"),
            "num_tokens": Value("int32"),
            "num_supervised": Value("int32"),
            "messages": Value("string"),
            "tools": Value("string"),
        }
    )


def import_datasets_in_background() -> None:
    """Start importing ``datasets`` (about 0.4 s of CPU) in a thread, for ``save_dataset`` to find done.

    ``prepare`` calls it while this process waits for its worker processes to start, when a core
    would otherwise sit idle; a failed import is left for ``save_dataset`` to report.
    """
    import threading

    def load() -> None:
        try:
            import datasets  # noqa: F401
        except Exception:
            pass

    threading.Thread(target=load, name="tracetune-import-datasets", daemon=True).start()


def save_dataset(folder: Path, splits: dict[str, Rows]) -> None:
    """Write the rows as ``DatasetDict.save_to_disk`` lays a dataset out, in one streaming pass.

    Each split's rows go through ``datasets``' own ``ArrowWriter`` (``WRITER_BATCH`` rows at a
    time) straight into the files ``load_from_disk`` reads, split into shards of about
    ``SHARD_BYTES``, with the ``state.json`` and ``dataset_info.json`` that ``save_to_disk``
    writes. Nothing is read back: building a cached dataset and saving it would map the whole
    of it into this process again, so its resident memory would grow with the corpus. The same
    rows always give the same files (the fingerprint is fixed).
    """
    from datasets import DatasetInfo
    from datasets.utils.py_utils import asdict  # save_to_disk's own (features as they serialise)

    feats = features()
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        part = folder / name
        part.mkdir()
        count = _write_shards(part, rows, feats)
        state = {
            "_data_files": [{"filename": _shard_name(k, count)} for k in range(count)],
            "_fingerprint": f"tracetune-{name}",
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": name,
        }
        (part / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
        info = asdict(DatasetInfo(features=feats))
        (part / "dataset_info.json").write_text(json.dumps({k: info[k] for k in sorted(info)}, indent=2), encoding="utf-8")
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}), encoding="utf-8")


#: Bytes (about) of one Arrow file of a split, as ``save_to_disk``'s default ``max_shard_size``.
SHARD_BYTES = 500 * 2**20


def _shard_name(index: int, count: int) -> str:
    return f"data-{index:05d}-of-{count:05d}.arrow"


def _write_shards(part: Path, rows: Rows, feats) -> int:
    """The split's rows in Arrow files of about ``SHARD_BYTES`` (one, schema only, when empty); their count."""
    from datasets.arrow_writer import ArrowWriter

    paths: list[Path] = []
    writer, size = None, 0
    for row in rows.records():
        if writer is None:
            paths.append(part / f".shard-{len(paths)}.arrow")
            writer, size = ArrowWriter(features=feats, path=str(paths[-1]), writer_batch_size=WRITER_BATCH), 0
        writer.write(row)
        size += 5 * row["num_tokens"] + len(row["messages"]) + len(row["tools"]) + 64
        if size >= SHARD_BYTES:
            writer.finalize()
            writer = None
    if writer is not None:
        writer.finalize()
    if not paths:
        paths.append(part / ".shard-0.arrow")
        ArrowWriter(features=feats, path=str(paths[0])).finalize()
    for k, path in enumerate(paths):
        path.rename(part / _shard_name(k, len(paths)))
    return len(paths)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` as JSON, atomically, non-ASCII characters kept as they are."""
    atomic_write_json(path, value, ensure_ascii=False)


def write_jsonl(path: Path, records: Iterator[dict[str, Any]]) -> int:
    """Write each record as one JSON line of ``path``; returns how many were written."""
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def staging_dir(out_dir: Path) -> Path:
    """A fresh temporary folder next to ``out_dir`` (refuses to replace a folder prepare did not write)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "prepare_stats.json").exists():
        raise TracetuneError(
            f"{out_dir} exists and does not hold a prepared dataset; refusing to replace it",
            hint="choose an empty or new --out folder",
        )
    return temp_dir_for(out_dir)


def commit_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished staging folder into place, replacing an earlier prepared dataset."""
    replace_dir(tmp, out_dir)
