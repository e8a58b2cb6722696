"""Crash-safe stage folders and content hashes for run artifacts.

Every stage folder is filled under a temporary name and renamed into place
(single files go through ``tracetune.util.files.atomic_write_text``), so a
reader sees either the previous complete version or the new complete one,
never a half-written file or folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from tracetune.util.files import TMP_MARK as _TMP_MARK
from tracetune.util.files import replace_dir, sha256_file, temp_dir_for


@contextlib.contextmanager
def staging_dir(final: Path, keep_failed: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces ``final`` only if the block succeeds.

    With ``keep_failed``, the outputs of a block that raised (not one that was
    interrupted) are kept for inspection as ``<final>.failed``, a name no
    reader takes for the finished folder.
    """
    tmp = temp_dir_for(final)
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
    replace_dir(tmp, final)
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
