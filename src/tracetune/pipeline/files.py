"""Crash-safe writing and content hashes for run artifacts.

Every artifact is written next to its final path under a temporary name and
renamed into place, so a reader sees either the previous complete version or
the new complete one, never a half-written file or folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

_TMP_MARK = ".tmp-"


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def staging_dir(final: Path, keep_failed: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces ``final`` only if the block succeeds.

    With ``keep_failed``, the outputs of a block that raised (not one that was
    interrupted) are kept for inspection as ``<final>.failed``, a name no
    reader takes for the finished folder.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}{_TMP_MARK}{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except Exception:
        failed = final.with_name(f"{final.name}.failed")
        shutil.rmtree(failed, ignore_errors=True)
        if keep_failed:
            os.replace(tmp, failed)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(final.with_name(f"{final.name}.failed"), ignore_errors=True)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete leftovers of interrupted atomic writes directly inside ``folder``."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and (_TMP_MARK in p.name or ".old-" in p.name):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                removed.append(p)
    return removed


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(root: Path, ignore: tuple[str, ...] = ()) -> str:
    """One sha256 over a file or a folder: relative paths and file contents, in sorted order.

    Names starting with '.' are skipped (temporary files of atomic writes), as
    are top-level entries named in ``ignore``.
    """
    if root.is_file():
        return sha256_file(root)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or rel.parts[0] in ignore or not path.is_file():
            continue
        h.update(rel.as_posix().encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def hash_files(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path (dot-named entries skipped)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = sha256_file(path)
    return out


def hash_paths(paths: list[Path]) -> str:
    """One hash over several input paths (files or folders), each named by its own path."""
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p).encode() + b"\0" + (hash_tree(p) if p.exists() else "missing").encode() + b"\n")
    return h.hexdigest()
