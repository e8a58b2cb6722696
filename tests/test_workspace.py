"""Task workspaces sit at fixed paths, so the same seed writes byte-identical teacher sessions."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tracetune.errors import TracetuneError
from tracetune.util.workspace import fixed_workspace, workspace_root


def test_same_path_every_time_emptied_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    with fixed_workspace("teacher", "fix-add") as first:
        (first / "leftover.py").write_text("x = 1\n")
    assert not first.exists()
    with fixed_workspace("teacher", "fix-add") as second:
        assert second == first and list(second.iterdir()) == []
        assert oct(second.stat().st_mode & 0o777) == "0o700"
    assert first == tmp_path / f"tracetune-{os.getuid()}" / "teacher" / "fix-add"


def test_two_users_of_one_workspace_wait_for_each_other(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    order: list[str] = []

    def second() -> None:
        with fixed_workspace("live", "task"):
            order.append("second")

    with fixed_workspace("live", "task"):
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.3)
        order.append("first done")
    other.join(5)
    assert order == ["first done", "second"]


def test_a_root_owned_by_a_link_is_refused(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / f"tracetune-{os.getuid()}").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(TracetuneError, match="not a private folder"):
        workspace_root("teacher")


def test_the_teacher_writes_the_same_sessions_for_the_same_seed(tmp_path):
    from tracetune.demo.teacher import generate_demo_traces
    from tracetune.eval.live.tasks import load_tasks

    tasks = load_tasks(["train"])[:2]
    for run in ("a", "b"):
        generate_demo_traces(tmp_path / run, seed=3, per_task=2, tasks=tasks)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(names) == 4
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)


def test_test_durations_are_read_off_the_teachers_clock():
    from tracetune.demo.teacher import steady_durations

    out = "F.\n======\nFAIL: test_it (x 0.5s)\n----------------------------------------------------------------------\nRan 2 tests in 0.001s\n\nFAILED (failures=1)"
    assert steady_durations(out) == out.replace("in 0.001s", "in 0.000s")
    assert steady_durations("Ran 1 test in 12.345s\nOK") == "Ran 1 test in 0.000s\nOK"
    assert steady_durations("I ran 2 tests in 0.5s") == "I ran 2 tests in 0.5s"
