"""Task workspaces at fixed paths, so the same seed writes the same sessions.

A task's tool outputs carry its workspace path (a Python traceback names its
files), and that text is what the student trains on and is prompted with. A
random temporary folder name would make every demo session, and so the trained
student and its figures, differ from one run to the next. ``fixed_workspace``
gives ``$TMPDIR/tracetune-<uid>/<kind>/<name>``: emptied first, removed after,
and held under an exclusive lock while in use, so two runs of one user wait for
each other instead of sharing a folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from tracetune.errors import TracetuneError


def workspace_root(kind: str) -> Path:
    """``$TMPDIR/tracetune-<uid>/<kind>``, created private; refused when another user owns it or it is a link."""
    top = Path(tempfile.gettempdir()) / f"tracetune-{os.getuid()}"
    for folder in (top, top / kind):
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise TracetuneError(f"{folder} is not a private folder of this user",
                                 hint="remove it, or set TMPDIR to a folder only you can write")
    return top / kind


@contextlib.contextmanager
def fixed_workspace(kind: str, name: str) -> Iterator[Path]:
    """An empty folder ``workspace_root(kind) / name`` for the duration of the block (locked, then removed)."""
    root = workspace_root(kind)
    path = root / name
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
