"""Writing the prepared dataset contract into a folder (see docs/architecture.md, "Prepare").

Everything is written into a temporary sibling folder first and renamed into
place at the end, so a crash never leaves half a dataset behind.
"""

from __future__ import annotations

import json
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tracetune.errors import TracetuneError
from tracetune.prepare.windows import Example
from tracetune.util.files import atomic_write_json, replace_dir, temp_dir_for

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


@dataclass
class Rows:
    """Column-wise rows of one split; ids and masks held compactly (4 and 1 bytes a token)."""

    columns: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in COLUMNS})

    def add(self, example: Example, episode_id: str, session_id: str, family_id: str, tools: tuple[dict, ...]) -> None:
        r = example.rendered
        values = (
            array("i", r.ids),
            bytes(r.mask),
            episode_id,
            session_id,
            family_id,
            example.window,
            r.num_tokens,
            r.num_supervised,
            json.dumps(list(example.messages), ensure_ascii=False),
            json.dumps(list(tools), ensure_ascii=False),
        )
        for name, value in zip(COLUMNS, values):
            self.columns[name].append(value)

    def __len__(self) -> int:
        return len(self.columns["input_ids"])

    def records(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            row = {name: self.columns[name][i] for name in COLUMNS}
            row["input_ids"] = row["input_ids"].tolist()
            row["assistant_masks"] = list(row["assistant_masks"])
            yield row


def features():
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


def save_dataset(folder: Path, splits: dict[str, Rows]) -> None:
    """Stream the rows into Arrow (never all of them as Python lists at once) and save."""
    import tempfile

    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    feats = features()
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".arrow-") as cache:
        parts = {}
        for name, rows in splits.items():
            if len(rows):
                parts[name] = Dataset.from_generator(
                    rows.records, features=feats, cache_dir=cache, fingerprint=f"tracetune-{name}-{os.getpid()}"
                )
            else:
                parts[name] = Dataset.from_dict({c: [] for c in COLUMNS}, features=feats)
        # an empty split saved with the default sharding writes no data file and cannot be loaded back
        shards = {name: 1 for name, part in parts.items() if len(part) == 0}
        DatasetDict(parts).save_to_disk(str(folder), num_shards=shards or None)


def write_json(path: Path, value: Any) -> None:
    atomic_write_json(path, value, ensure_ascii=False)


def write_jsonl(path: Path, records: Iterator[dict[str, Any]]) -> int:
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
