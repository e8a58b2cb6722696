"""Train one sweep variant in a process of its own, with its progress and logs reported back.

A long in-process sweep keeps the first variant's freed memory: the C heap
of the training loop grows with its steps and is not returned between
variants, so the peak of a run was that of every variant together (6.4 GB
for two 60-step SmolLM2 variants on CPU, against 4.2 GB for one). A fresh
process per variant starts each one from an empty heap and gives all of it
back when it ends.

The child is *spawned* (never forked: the parent holds torch's thread pools).
It sends three kinds of message through one pipe: ``step`` (the progress the
parent's bar shows), ``log`` (a log record, handled by the parent's logging
as if raised there) and ``done`` (the variant's outcome). A child that dies
without an outcome (killed for memory, a crash in native code) is recorded
as a failed variant that says how it died.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import signal
from pathlib import Path
from typing import Any, Callable

from tracetune.sweep.selection import VariantOutcome

StepFn = Callable[[str, int, int, dict[str, float]], None]
RunFn = Callable[..., VariantOutcome]


def run_isolated(run: RunFn, args: tuple[Any, ...], name: str, params: dict[str, Any], out_dir: Path,
                 on_step: StepFn | None = None) -> VariantOutcome:
    """``run(*args, on_step)`` in a spawned process; its steps, log records and outcome come back here.

    ``run`` must be importable by name (a module-level function) and return a ``VariantOutcome``.
    """
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(run, args, sender, on_step is not None), name=f"variant {name}",
                        daemon=True)
    child.start()
    sender.close()  # the child holds the only sending end: its death reads as end-of-file here
    try:
        outcome = _receive(receiver, on_step)
    except BaseException:  # interrupted here (Ctrl-C): the variant stops with us
        child.terminate()
        raise
    finally:
        child.join()
        receiver.close()
    return outcome or died(name, params, out_dir, child.exitcode)


def died(name: str, params: dict[str, Any], out_dir: Path, exitcode: int | None) -> VariantOutcome:
    """The failed outcome of a variant whose process ended without reporting one."""
    if exitcode is not None and exitcode < 0:
        sig = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else f"signal {-exitcode}"
        oom = " (most often the kernel's out-of-memory killer)" if sig == "SIGKILL" else ""
        error = f"the variant's training process was killed by {sig}{oom}"
    else:
        error = f"the variant's training process exited with code {exitcode} before reporting a result"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "error.txt").write_text(error + "\n", encoding="utf-8")
    return VariantOutcome(name, params, "failed", {}, error, str(out_dir))


def _receive(receiver: Any, on_step: StepFn | None) -> VariantOutcome | None:
    while True:
        try:
            kind, payload = receiver.recv()
        except EOFError:
            return None
        outcome = _handle(kind, payload, on_step)
        if outcome is not None:
            return outcome


def _handle(kind: str, payload: Any, on_step: StepFn | None) -> VariantOutcome | None:
    if kind == "done":
        return payload
    if kind == "step" and on_step is not None:
        on_step(*payload)
    elif kind == "log":
        logger = logging.getLogger(payload.name)
        if logger.isEnabledFor(payload.levelno):
            logger.handle(payload)
    return None


def _child_main(run: RunFn, args: tuple[Any, ...], sender: Any, report_steps: bool) -> None:
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(_Tagged(sender))]
    root.setLevel(logging.INFO)

    def on_step(variant: str, step: int, total: int, logs: dict[str, float]) -> None:
        sender.send(("step", (variant, step, total, dict(logs))))

    outcome = run(*args, on_step if report_steps else None)
    sender.send(("done", outcome))
    sender.close()


class _Tagged:
    """The pipe as ``QueueHandler`` sees it: every record goes out tagged ``log``."""

    def __init__(self, sender: Any) -> None:
        self._sender = sender

    def put_nowait(self, record: logging.LogRecord) -> None:
        """Send one prepared log record to the parent."""
        self._sender.send(("log", record))
