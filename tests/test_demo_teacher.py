"""The scripted demo teacher: solves every training task with real tool calls and writes real pi sessions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tracetune.demo.teacher import generate_demo_traces
from tracetune.eval.live.tasks import load_tasks
from tracetune.readers import pi

from pi_oracle_check import oracle_mismatches



@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_traces")
    return generate_demo_traces(out, seed=0, per_task=4)


def _entries(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _task_of(entries, tasks):
    first_user = next(e["message"]["content"][0]["text"] for e in entries if e.get("message", {}).get("role") == "user")
    [task] = [t for t in tasks if first_user in (t.instruction, *t.phrasings)]
    return task


def test_every_training_task_is_solved_with_real_tool_calls(traces):
    tasks = load_tasks(["train"])
    assert len(traces) == 4 * len(tasks)
    solved = set()
    for path in traces:
        entries = _entries(path)
        assert entries[0]["type"] == "session" and entries[0]["version"] == 3
        task = _task_of(entries, tasks)
        messages = [e["message"] for e in entries if e["type"] == "message"]
        calls = {b["id"]: b for m in messages if m["role"] == "assistant" for b in m["content"] if b["type"] == "toolCall"}
        results = [m for m in messages if m["role"] == "toolResult"]
        checks = [r for r in results if calls[r["toolCallId"]]["name"] == "bash" and calls[r["toolCallId"]]["arguments"]["command"] == task.check]
        assert checks and not checks[-1]["isError"], path
        assert checks[-1]["content"][0]["text"].rstrip().endswith("OK")
        assert {"ls", "find", "grep"} & {c["name"] for c in calls.values()}
        assert {"edit", "write"} & {c["name"] for c in calls.values()}
        solved.add(task.id)
    assert solved == {t.id for t in tasks}
    assert not any(t.split == "heldout" for t in load_tasks(["train"]))


def test_sessions_read_back_without_warnings_and_use_branches_and_compactions(traces):
    kinds = set()
    starts = set()
    for path in traces:
        [session] = pi.read(path)
        assert session.warnings == (), path
        assert session.trainable_turns >= 4
        assert session.teacher_models and "scripted-teacher" in session.teacher_models[0]
        kinds |= {e["type"] for e in _entries(path)}
        starts |= {ep.start for ep in session.episodes}
    assert {"branch_summary", "compaction"} <= kinds
    assert {"root", "branch", "compaction"} <= starts


def test_variation_across_sessions_of_one_task(traces):
    by_task: dict[str, set[str]] = {}
    tasks = load_tasks(["train"])
    for path in traces:
        entries = _entries(path)
        task = _task_of(entries, tasks)
        names = tuple(b["name"] for e in entries if e.get("message", {}).get("role") == "assistant" for b in e["message"]["content"] if b["type"] == "toolCall")
        by_task.setdefault(task.id, set()).add(names)
    assert all(len(v) >= 2 for v in by_task.values()), by_task


def test_same_seed_same_sessions(tmp_path):
    [task] = load_tasks(["train"], ["fix-add"])
    a = generate_demo_traces(tmp_path / "a", seed=3, per_task=2, tasks=[task])
    b = generate_demo_traces(tmp_path / "b", seed=3, per_task=2, tasks=[task])
    assert [p.name for p in a] == [p.name for p in b]
    def text(path):  # real command output: the workspace path and test timings may differ
        raw = path.read_text().replace(_entries(path)[0]["cwd"], "<workspace>")
        return re.sub(r"in \d+\.\d+s", "in <t>s", raw)

    assert [text(p) for p in a] == [text(p) for p in b]


@pytest.mark.oracle
def test_sessions_pass_the_pi_oracle(traces):
    tree_shaped = [p for p in traces if '"compaction"' in p.read_text() or '"branch_summary"' in p.read_text()]
    for path in traces[::4] + tree_shaped[:4]:
        assert oracle_mismatches(path) == [], path
