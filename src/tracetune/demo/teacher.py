"""A scripted teacher agent: solves the live suite's training tasks with real tool calls, writing pi sessions.

It stands in for a real coding agent in ``tracetune demo`` (no model, no
network). Each session is a real episode: the task's files are set up in a
temporary workspace, every tool call (``ls``/``find``/``grep``/``read``,
``edit``/``write``, ``bash`` running the check) is executed there through
``WorkspaceTools`` (bash in the bubblewrap sandbox; where bwrap is unusable,
as a limited plain process: the teacher only runs the suite's own check
commands on its own reference fixes, nothing a model wrote) and
its true result is recorded. The actions come from the task's reference
``solution``; what varies with the seed is the wording of the request, the
exploration order, parallel vs sequential reads, whether the tests are run
before the fix, and the replies. Some sessions carry pi's tree features: a
branch (a first path that stops to ask, then a branch summary and a second
path that fixes), a compaction (then a follow-up question), or a failed
first read. Deterministic for a given seed: timestamps come from a fixed clock
(``teacher_clock``), and so do test durations: unittest's ``Ran 3 tests in
0.001s`` is recorded as ``in 0.000s`` (``steady_durations``), since a real
duration that flips between 0.000 and 0.001 would change the training data,
and so the demo's figures, from one run to the next.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracetune.conversation.types import Message, ToolCall
from tracetune.demo.practice import practice_tasks
from tracetune.errors import TracetuneError
from tracetune.eval.live.record import PiSessionWriter, Usage, teacher_clock
from tracetune.eval.live.tasks import Task, load_tasks
from tracetune.eval.live.tools import ToolResult, WorkspaceTools
from tracetune.eval.sandbox import SandboxLimits, bwrap_problem
from tracetune.util.workspace import fixed_workspace

TEACHER_MODEL = "scripted-teacher"

_OPENERS = ["Let me look at the project first.", "I'll start by exploring the files.", "", "First, a quick look around."]
_FIX_TEXTS = ["Now I'll make the change in {path}.", "The problem is in {path}; fixing it.", "", "Updating {path}."]
_RUN_TEXTS = ["Let me run the tests.", "Running the check to confirm.", ""]
_DURATION = re.compile(r"^(Ran \d+ tests? in )\d+\.\d+s$", re.MULTILINE)
_DONE_TEXTS = [
    "Done: I changed {paths} and `{check}` now passes.",
    "Fixed. {paths} updated; all tests pass.",
    "The change is in {paths}. I ran `{check}` and it succeeds.",
]


class _Run:
    """One teacher session: a workspace, a pi session writer, and the acting helper."""

    def __init__(self, task: Task, rng: random.Random, seed: int, workspace: Path):
        self.task, self.rng = task, rng
        self.workspace = workspace
        task.setup(self.workspace)
        mode = "bwrap" if bwrap_problem() is None else "unsandboxed"  # trusted commands only (see above)
        self.tools = WorkspaceTools(self.workspace, SandboxLimits(timeout_s=20), mode=mode)
        self.writer = PiSessionWriter(str(self.workspace), provider="tracetune", model=TEACHER_MODEL,
                                      api="scripted", seed=seed, clock=teacher_clock(seed))
        self.context_chars = 0

    def user(self, text: str) -> str:
        self.context_chars += len(text)
        return self.writer.user(text)

    def act(self, text: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[str, list[ToolResult]]:
        """One assistant turn: record it, execute its calls, record their results."""
        tool_calls = tuple(ToolCall(id=self.writer.tool_call_id(), name=n, arguments=a) for n, a in calls)
        msg = Message(role="assistant", content=text, tool_calls=tool_calls)
        out_chars = len(text) + sum(len(str(a)) for _, a in calls)
        entry = self.writer.assistant(msg, Usage(input=self.context_chars // 4 + 200, output=out_chars // 4 + 1))
        self.context_chars += out_chars
        results = []
        for call in tool_calls:
            result = self.tools.execute(call.name, call.arguments)
            result = replace(result, text=steady_durations(result.text))
            self.writer.tool_result(call.id, call.name, result.text, result.is_error)
            self.context_chars += len(result.text)
            results.append(result)
        return entry, results

    def say(self, options: list[str], **fmt: str) -> str:
        return self.rng.choice(options).format(**fmt)


def steady_durations(text: str) -> str:
    """``text`` with unittest's measured durations (``Ran 2 tests in 0.001s``) read off the teacher's fixed clock."""
    return _DURATION.sub(r"\g<1>0.000s", text)


def _targets(task: Task) -> list[str]:
    return list(dict.fromkeys(s.path for s in task.solution))


def _explore(run: _Run) -> None:
    """ls / find / grep, then read what the fix touches (and, usually, the tests)."""
    task, rng = run.task, run.rng
    if rng.random() < 0.2 and task.check_files:  # a wrong first guess: the tests are not in tests/
        run.act("", [("read", {"path": "tests/" + next(iter(task.check_files))})])
    way = rng.choice(["ls", "find", "grep"])
    if way == "ls":
        run.act(run.say(_OPENERS), [("ls", {})])
    elif way == "find":
        run.act(run.say(_OPENERS), [("find", {"pattern": "*.py"})])
    else:
        run.act(run.say(_OPENERS), [("grep", {"pattern": "^(def|class) ", "glob": "*.py"})])
    existing = [p for p in _targets(task) if p in task.files]
    reads = existing + [p for p in task.check_files if rng.random() < 0.7 or not existing]
    rng.shuffle(reads)
    if rng.random() < 0.5:
        run.act("", [("read", {"path": p}) for p in reads])
    else:
        for p in reads:
            run.act("", [("read", {"path": p})])


def _fix_and_check(run: _Run) -> str:
    """Apply the reference solution, run the check, reply. Returns the id of the turn that ran the check."""
    task = run.task
    for step in task.solution:
        run.act(run.say(_FIX_TEXTS, path=step.path), [(step.tool, step.arguments)])
    check_entry, results = run.act(run.say(_RUN_TEXTS), [("bash", {"command": task.check})])
    if results[0].is_error:
        raise TracetuneError(f"the reference solution of task {task.id} does not pass its check:\n{results[0].text}",
                             hint="fix the task's [[solution]] or its check command")
    paths = ", ".join(_targets(task))
    run.act(run.say(_DONE_TEXTS, paths=paths, check=task.check), [])
    return check_entry


def _session(task: Task, seed: int, shape: str) -> PiSessionWriter:
    rng = random.Random(zlib.crc32(f"{task.id}/{seed}".encode()))
    with fixed_workspace("teacher", task.id) as workspace:  # same path every run: same sessions for a seed
        run = _Run(task, rng, seed=zlib.crc32(f"teacher/{task.id}/{seed}".encode()), workspace=workspace)
        run.writer.model_change()
        run.writer.thinking_level_change("off")
        run.user(rng.choice([task.instruction, *task.phrasings]))
        _explore(run)
        branch_at = run.writer.leaf_id
        if shape == "branch":
            run.act(run.say(_RUN_TEXTS), [("bash", {"command": task.check})])
            run.act(f"The check `{task.check}` fails as described. Do you want me to fix {', '.join(_targets(task))}?", [])
            abandoned = run.writer.leaf_id
            run.writer.branch(branch_at)
            run.writer.branch_summary(abandoned, "The tests were run and fail; no file was changed. The user asked to fix it directly.")
            run.user("Go ahead and fix it.")
        elif rng.random() < 0.4:
            run.act(run.say(_RUN_TEXTS), [("bash", {"command": task.check})])
        check_entry = _fix_and_check(run)
        if shape == "compaction":
            run.writer.compaction(f"Task: {task.instruction}\nDone: changed {', '.join(_targets(task))}; `{task.check}` passes.",
                                  check_entry, tokens_before=run.context_chars // 4)
            run.user("Show me the final version of the file you changed.")
            run.act("", [("read", {"path": _targets(task)[-1]})])
            run.act(f"That is the final {_targets(task)[-1]}.", [])
        return run.writer


def generate_demo_traces(
    out_dir: str | Path, seed: int = 0, per_task: int = 6, tasks: list[Task] | None = None,
    practice: int = 0, per_practice: int = 2,
) -> list[Path]:
    """Write ``per_task`` pi sessions for every training task into ``out_dir``; returns their paths.

    Sessions 2, 6, 10, ... of a task have a branch; 3, 8, 13, ... (when not branched) a compaction.
    ``practice`` generated tasks (``demo/practice.py``) add ``per_practice`` straight sessions each.
    """
    chosen = tasks if tasks is not None else load_tasks(["train"])
    paths = []
    for task in chosen:
        for k in range(per_task):
            shape = "branch" if k % 4 == 2 else "compaction" if k % 5 == 3 else "straight"
            paths.append(_session(task, seed * 10_000 + k, shape).save(out_dir))
    for task in practice_tasks(practice, seed=seed):
        for k in range(per_practice):
            paths.append(_session(task, seed * 10_000 + k, "straight").save(out_dir))
    return paths


def solution_turns(task: Task) -> list[Message]:
    """The teacher's plainest path for ``task`` as assistant messages (ls, read, fix, run the check, reply).

    Handy for replaying the teacher through the live loop as a scripted backend.
    """
    calls: list[tuple[str, dict[str, Any]]] = [("ls", {})]
    calls += [("read", {"path": p}) for p in _targets(task) if p in task.files]
    calls += [(s.tool, s.arguments) for s in task.solution]
    calls.append(("bash", {"command": task.check}))
    turns = [Message(role="assistant", tool_calls=(ToolCall(id=f"call_{i}", name=n, arguments=a),)) for i, (n, a) in enumerate(calls)]
    return turns + [Message(role="assistant", content=f"Done: `{task.check}` passes.")]
