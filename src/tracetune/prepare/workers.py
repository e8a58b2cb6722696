"""``prepare``'s worker processes: the same work in this process or in N, the results in order.

Three kinds of task go to the workers (``tasks``): detecting secrets in a
chunk of texts (the learn pass), redacting and summarising one file's sessions
(the survey pass) and converting, rendering and serialising one Episode (the
render pass). Each is a pure function of its input and of what every worker
got at start (the tokenizer with its template, the config), and ``Workers.run``
hands the results back in submission order with at most ``ahead`` tasks in
flight. Everything that depends on order (placeholder numbers, stats, rows) is
done by the caller as the results arrive, so the output is byte for byte the
same for any number of workers. One worker runs the tasks in this process.

Processes are never forked from the calling process, which may hold threads
(the CLI's progress bar, tokenizers' thread pool). Where the platform has it,
they are forked from multiprocessing's *forkserver*, a single-threaded process
that imports what a worker runs (``PRELOAD`` and the tokenizer's module) once:
a worker then starts in milliseconds instead of importing transformers again
(about a second of CPU each). Elsewhere they start with ``spawn``. Either way
the calling script is imported again in each worker, and each runs with
``TOKENIZERS_PARALLELISM=false`` so N workers use N cores, not N times all of
them.

The processes are started by a thread, so the caller goes on reading while the
forkserver imports (most of a second, on one core); ``run`` draws up to
``EARLY`` tasks in that time and submits them once the processes are up.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from tracetune.errors import TracetuneError
from tracetune.prepare.config import PrepareConfig

#: Why a worker process dies while starting, nearly always.
MAIN_GUARD_HINT = ("each worker process imports the calling script again: put the prepare() call under "
                   "`if __name__ == \"__main__\":`, or pass workers=1")

#: Modules a worker runs, imported once by the forkserver every worker is forked from.
PRELOAD = ("tracetune.prepare.workers", "tracetune.prepare.tasks", "tracetune.prepare.windows", "tracetune.prepare.redact_stream",
           "tracetune.prepare.corpus", "tracetune.conversation.wire", "jinja2.sandbox", "transformers.utils.chat_template_utils")

#: Tasks drawn ahead (read, not yet submitted) while the worker processes start: at most this many, 24 detection
#: chunks being under 10 M characters.
EARLY = 24
#: Below this many bytes of traces, worker processes cost more to start (seconds each) than they save.
MIN_PARALLEL_BYTES = 1_000_000


@dataclass
class WorkerState:
    tokenizer: Any
    config: PrepareConfig
    redactor: Any = None
    spilled: dict[Path, list] = field(default_factory=dict)  # the last spill files loaded
    learned: dict[Path, Any] = field(default_factory=dict)  # pickled StreamRedactor -> loaded (the survey pass)

    def learned_redactor(self, path: Path):
        """The ``StreamRedactor`` pickled to ``path`` after the learn pass, loaded once."""
        if path not in self.learned:
            import pickle

            self.learned.clear()
            with path.open("rb") as fh:
                self.learned[path] = pickle.load(fh)
        return self.learned[path]

    def sessions(self, path: Path) -> list:
        """The sessions pickled in the spill file ``path``, loaded once (the last two files stay in memory)."""
        if path not in self.spilled:
            from tracetune.prepare.corpus import load_spill

            if len(self.spilled) >= 2:
                self.spilled.pop(next(iter(self.spilled)))
            self.spilled[path] = load_spill(path)
        return self.spilled[path]


_STATE: WorkerState | None = None


def _init(state_file: str) -> None:
    global _STATE
    import pickle

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    with open(state_file, "rb") as fh:
        tokenizer, config = pickle.load(fh)
    _STATE = WorkerState(tokenizer, config)


def _state_file(tokenizer, config: PrepareConfig) -> str:
    """The tokenizer and config pickled to a temporary file, for the workers to load.

    Passed inline, they would go down the start pipe (megabytes): a worker that dies before
    reading it all (a script without the ``__main__`` guard) would leave ``spawn`` blocked on
    the write forever instead of reporting the broken pool.
    """
    import pickle
    import tempfile

    with tempfile.NamedTemporaryFile("wb", prefix="tracetune-workers-", suffix=".pkl", delete=False) as fh:
        pickle.dump((tokenizer, config), fh, protocol=pickle.HIGHEST_PROTOCOL)
    return fh.name


def _context(tokenizer):
    """The forkserver context with ``PRELOAD`` and the tokenizer's module preloaded, else ``spawn``'s.

    The preload list only counts when the forkserver starts (once per process); a server
    already running serves as it is.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOAD, type(tokenizer).__module__])
    return context


def _call(fn: Callable[[WorkerState, Any], Any], item: Any) -> Any:
    return fn(_STATE, item)


class Workers:
    """``count`` worker processes, or this process when ``count`` is 1."""

    def __init__(self, count: int, tokenizer, config: PrepareConfig):
        self.count = max(1, count)
        self.state = WorkerState(tokenizer, config)
        self.executor = None
        self.state_file: str | None = None
        if self.count > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            if getattr(multiprocessing.current_process(), "_inheriting", False):
                raise TracetuneError("prepare's worker processes were asked for while a worker was starting",
                                     hint=MAIN_GUARD_HINT)

            self.state_file = _state_file(tokenizer, config)
            self.executor = ProcessPoolExecutor(self.count, mp_context=_context(tokenizer), initializer=_init,
                                                initargs=(self.state_file,))
            self._starter = threading.Thread(target=self._start, name="tracetune-workers-start", daemon=True)
            self._starter.start()

    def _start(self) -> None:
        """Start the processes (each task submitted starts one more, up to ``count``) off the calling thread."""
        try:
            for _ in range(self.count):
                self.executor.submit(os.getpid)
        except Exception:  # a pool broken already: the first task run reports it
            pass

    def run(self, fn: Callable[[WorkerState, Any], Any], tagged: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
        """(tag, fn(state, item)) for each (tag, item), in order; items are drawn only as room frees up."""
        if self.executor is None:
            for tag, item in tagged:
                yield tag, fn(self.state, item)
            return
        ahead = 2 * self.count
        pending: deque = deque()
        early: deque = deque()  # items drawn while the processes start (the forkserver imports for about a second)
        for tag, item in tagged:
            early.append((tag, item))
            if self._starter.is_alive() and len(early) < EARLY:
                continue
            while early:
                tag_early, item_early = early.popleft()
                pending.append((tag_early, self._submit(fn, item_early)))
                if len(pending) >= ahead:
                    tag_done, future = pending.popleft()
                    yield tag_done, _result(future)
        for tag, item in early:
            pending.append((tag, self._submit(fn, item)))
        while pending:
            tag_done, future = pending.popleft()
            yield tag_done, _result(future)

    def _submit(self, fn: Callable[[WorkerState, Any], Any], item: Any):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.executor.submit(_call, fn, item)
        except BrokenProcessPool:  # a process died while starting: the same report as a task's
            return _broken()

    def close(self) -> None:
        """Shut the worker processes down, dropping tasks not yet started; no-op without workers."""
        if self.executor is not None:
            self._starter.join()
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
        if self.state_file is not None:
            Path(self.state_file).unlink(missing_ok=True)
            self.state_file = None

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _result(future) -> Any:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        return _broken()


def _broken():
    raise TracetuneError("a prepare worker process died (its error, if any, is printed above)",
                         hint=MAIN_GUARD_HINT + "; if it was killed, free memory or lower workers") from None


def worth_starting(count: int, paths: Iterable[Path]) -> int:
    """``count``, or 1 when the traces are too small to repay starting processes."""
    if count <= 1:
        return 1
    size = 0
    for path in paths:
        try:
            size += path.stat().st_size
        except OSError:
            continue
        if size >= MIN_PARALLEL_BYTES:
            return count
    return 1


#: Resident memory of one worker: Python, transformers (which imports torch when installed), the tokenizer.
WORKER_MB = 500


def default_workers() -> int:
    """The machine's cores (those this process may run on), fewer if their memory would not fit.

    Each worker holds its own tokenizer and transformers (``WORKER_MB``); on Linux the count is
    kept to what half of ``MemAvailable`` holds.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            available = next(int(line.split()[1]) // 1024 for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return cores
    return max(1, min(cores, available // 2 // WORKER_MB))
