"""Peak resident memory of this process and of every process it started, however deep (Linux ``/proc``).

``getrusage(RUSAGE_CHILDREN)`` only sees children that were waited for: prepare's
workers are forked from multiprocessing's forkserver, a child that outlives the
call, so they never reach it. ``TreePeak`` samples the process tree instead,
every ``interval`` seconds from a thread, and reports the largest RSS seen of
this process and of any one descendant (the forkserver, idle, included).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        kids = parents.get(todo.pop(), [])
        out.extend(kids)
        todo.extend(kids)
    return out


class TreePeak:
    """Context manager: ``self_mb`` and ``children_mb``, the peaks seen while it was open."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.self_mb = 0.0
        self.children_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        self.self_mb = max(self.self_mb, _rss_mb(me))
        for pid in _descendants(me):
            self.children_mb = max(self.children_mb, _rss_mb(pid))

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
