"""Crash-safe file and folder writes and file hashes, used by every stage that writes an artifact.

A file or folder is written next to its final path under a hidden temporary
name (``.<name>.tmp-<pid>``) and renamed into place, so a reader sees either
the previous complete version or the new complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

TMP_MARK = ".tmp-"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 via a temporary file renamed into place, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(
    path: Path,
    data: Any,
    *,
    ensure_ascii: bool = True,
    default: Callable[[Any], Any] | None = None,
    end: str = "\n",
) -> None:
    """``data`` as indented JSON (two spaces, keys in insertion order) followed by ``end``."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=ensure_ascii, default=default) + end)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 digest of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def temp_dir_for(final: Path) -> Path:
    """A fresh, empty ``.<name>.tmp-<pid>`` folder beside ``final`` (its parents created)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing (then deleting) what was there."""
    final = Path(final)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
