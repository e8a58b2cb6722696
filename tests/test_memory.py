"""The heap trim between training steps: real on glibc, a no-op elsewhere, wired into every train run."""

from __future__ import annotations

import platform

import pytest

from tracetune.util import memory


def _resident_mb() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_trim_gives_freed_heap_pages_back():
    chunks = [bytearray(100_000) for _ in range(4_000)]  # below the mmap threshold: they live in the heap
    del chunks[::2]  # half freed, interleaved with live chunks: nothing at the top to shrink
    before = _resident_mb()
    assert memory.trim_heap() is True
    assert _resident_mb() < before - 100
    del chunks


def test_without_malloc_trim_it_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.trim_heap() is False


def test_the_callback_trims_after_steps_and_evaluations(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(memory, "trim_heap", lambda: calls.append(1) or True)
    callback = memory.heap_trim_callback()
    callback.on_step_end(None, None, None)
    callback.on_evaluate(None, None, None)
    assert len(calls) == 2
