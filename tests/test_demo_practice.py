"""Practice tasks: generated training tasks that are solvable, varied, and apart from the held-out tasks."""

from __future__ import annotations

import json
import re

import pytest

from tracetune.demo.practice import practice_tasks
from tracetune.demo.teacher import generate_demo_traces
from tracetune.eval.live.tasks import load_tasks
from tracetune.eval.live.tools import WorkspaceTools
from tracetune.eval.sandbox import SandboxLimits, bwrap_problem


def test_practice_tasks_are_deterministic_unique_and_varied():
    tasks = practice_tasks(36, seed=0)
    assert [t.model_dump() for t in tasks] == [t.model_dump() for t in practice_tasks(36, seed=0)]
    assert [t.model_dump() for t in tasks] != [t.model_dump() for t in practice_tasks(36, seed=1)]
    assert len({t.id for t in tasks}) == 36
    assert all(t.split == "train" for t in tasks)
    assert len({next(iter(t.files)) for t in tasks}) >= 8  # many module names, not one file by heart
    kinds = {t.solution[0].arguments["edits"][0]["oldText"].strip().split()[0] for t in tasks}
    assert {"return", "raise"} <= kinds and len(kinds) >= 3  # bug fixes, implementations, settings


def test_practice_tasks_stay_apart_from_the_held_out_tasks():
    heldout = load_tasks(["heldout"])
    names = set()
    for task in heldout:
        names |= set(task.files) | set(task.check_files)
        for text in task.files.values():
            names |= set(re.findall(r"def (\w+)", text))
    text = json.dumps([t.model_dump() for t in practice_tasks(60, seed=0)])
    for name in names:
        assert not re.search(rf"\b{re.escape(name)}\b", text), name
    fixes = " ".join(e["newText"] for t in practice_tasks(60, seed=0) for s in t.solution for e in s.arguments["edits"])
    for operation in (" * ", "max(", "reversed", "[::-1]", "bisect"):
        assert operation not in fixes, operation


@pytest.mark.parametrize("task", practice_tasks(30, seed=0), ids=lambda t: t.id)
def test_reference_fix_passes_and_unfixed_code_fails(task, tmp_path):
    limits = SandboxLimits(timeout_s=20)
    mode = "bwrap" if bwrap_problem() is None else "unsandboxed"  # our own reference fixes and checks: trusted
    task.setup(tmp_path)
    assert task.run_check(tmp_path, limits, mode=mode).exit_code != 0
    tools = WorkspaceTools(tmp_path, limits, mode=mode)
    for step in task.solution:
        result = tools.execute(step.tool, step.arguments)
        assert not result.is_error, result.text
    assert task.run_check(tmp_path, limits, mode=mode).exit_code == 0


def test_teacher_adds_straight_practice_sessions(tmp_path):
    paths = generate_demo_traces(tmp_path, seed=0, per_task=0, practice=3, per_practice=2)
    assert len(paths) == 6
    for path in paths:
        types = [json.loads(line)["type"] for line in path.read_text().splitlines()]
        assert "branch_summary" not in types and "compaction" not in types
