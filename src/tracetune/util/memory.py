"""Give freed C-heap memory back to the operating system between training steps.

A training loop allocates and frees activations of a different size at every
step (every window has its own length). glibc keeps the freed chunks in its
heap, where they still count as resident, and the heap fragments: on 2 CPU
cores a 110-step SmolLM2 variant grew from ~4 GB to 6.1 GB resident with a
live set that did not grow. ``malloc_trim(0)`` returns every free page of the
heap (not only its top), so calling it once a step keeps the resident set near
what the step really uses. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _malloc_trim() -> Any | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def trim_heap() -> bool:
    """Return the heap's free pages to the system; True when glibc released some."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


def heap_trim_callback():
    """A ``TrainerCallback`` that trims the heap after every optimizer step and every evaluation."""
    from transformers import TrainerCallback

    class _TrimHeap(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            trim_heap()

        def on_evaluate(self, args, state, control, **kwargs):
            trim_heap()

    return _TrimHeap()
