"""Crash-safe stage folders and content hashes for run artifacts.

Every stage folder is filled under a temporary name and renamed into place
(single files go through ``tracetune.util.files.atomic_write_text``), so a
reader sees either the previous complete version or the new complete one,
never a half-written file or folder.

Input files (the traces) are hashed once per process: ``input_record`` lists
each session file a source holds (size, sha256) for the manifest, and
``hash_paths`` reuses those digests for the stages' inputs hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

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


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def input_sha256(path: Path) -> str:
    """sha256 of an input file, remembered for this process while its size, mtime and inode stay the same."""
    st = path.stat()
    key = (str(path.absolute()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def source_files(source: Path) -> dict[str, dict[str, Any]]:
    """Every session file the readers would read under ``source`` (a file or folder): relative path -> size, sha256.

    A source that does not exist holds no files; a file that cannot be hashed records its error.
    """
    from tracetune.readers.discover import discover_files

    source = Path(source).expanduser()
    if not (source.exists() or source.is_symlink()):
        return {}
    root = source if source.is_dir() else source.parent
    out: dict[str, dict[str, Any]] = {}
    for path in discover_files([source])[0]:
        rel = path.relative_to(root).as_posix()
        try:
            out[rel] = {"size": path.stat().st_size, "sha256": input_sha256(path)}
        except OSError as exc:
            out[rel] = {"error": exc.strerror or type(exc).__name__}
    return out


def input_record(paths: list[Path], labels: dict[str, str] | None = None,
                 hub_sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The manifest's ``inputs``: each source as configured (``labels``: local path -> spec) with its files.

    A Hub source (``hf://datasets/...``) also records the commit it was read at (``revision``).
    """
    from tracetune.readers.hub import is_hub_uri, parse_hub_uri

    labels, commits = labels or {}, {s.get("uri"): s.get("commit_sha") for s in hub_sources or []}
    record: dict[str, Any] = {}
    for path in paths:
        label = labels.get(str(path), str(path))
        commit = commits.get(parse_hub_uri(label).uri if is_hub_uri(label) else label)
        entry: dict[str, Any] = {"revision": commit} if commit else {}
        entry["files"] = source_files(Path(path))
        record[label] = entry
    return record


def hash_tree(root: Path, ignore: tuple[str, ...] = (), digest=sha256_file) -> str:
    """One sha256 over a file or a folder: relative paths and file contents, in sorted order.

    Names starting with '.' are skipped (temporary files of atomic writes), as
    are top-level entries named in ``ignore``.
    """
    if root.is_file():
        return digest(root)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or rel.parts[0] in ignore or not path.is_file():
            continue
        h.update(rel.as_posix().encode() + b"\0" + digest(path).encode() + b"\n")
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
        digest = hash_tree(p, digest=input_sha256) if p.exists() else "missing"
        h.update(str(p).encode() + b"\0" + digest.encode() + b"\n")
    return h.hexdigest()
