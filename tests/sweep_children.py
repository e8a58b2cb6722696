"""Module-level stand-ins for a variant's training, run in a spawned child by ``run_isolated`` tests.

They import nothing heavy, so a child starts in about a second.
"""

from __future__ import annotations

import logging
import os
import signal

from tracetune.sweep.selection import VariantOutcome


def three_steps(name: str, loss: float, on_step=None) -> VariantOutcome:
    """Report three steps and a warning, then an outcome carrying the child's pid."""
    for step in (1, 2, 3):
        if on_step is not None:
            on_step(name, step, 3, {"loss": loss / step})
    logging.getLogger("tracetune.train.trainer").warning("train split: %d of %d examples left out", 1, 9)
    return VariantOutcome(name, {"learning_rate": 1e-3}, "ok", {"eval_loss": loss, "pid": float(os.getpid())})


def killed(name: str, on_step=None) -> VariantOutcome:
    """Step once, then die as the out-of-memory killer would kill it."""
    if on_step is not None:
        on_step(name, 1, 5, {})
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def raises(name: str, on_step=None) -> VariantOutcome:
    """Fail outside the variant's own error handling (the child exits with code 1)."""
    raise SystemExit(3)
