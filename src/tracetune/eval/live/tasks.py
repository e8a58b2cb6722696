"""The live-eval task suite: small coding tasks, each a setup, an instruction and a check.

A task is one TOML file in ``tracetune/eval/tasks/``::

    id = "fix-add"
    difficulty = "easy"            # easy | medium | hard
    split = "train"                # train (the demo teacher may solve it) | heldout
    instruction = "..."            # what the user asks
    phrasings = ["...", "..."]     # other wordings of the same request (teacher variety)
    check = "python3 -m unittest -q test_calc"   # exit code 0 = solved
    [files]                        # the workspace at the start
    "calc.py" = "..."
    [check_files]                  # written at setup AND again before the check,
    "test_calc.py" = "..."         # so an agent that edits the tests cannot pass by it
    [[solution]]                   # a reference fix: pi tool calls (edit / write)
    tool = "edit"
    path = "calc.py"
    edits = [{oldText = "a - b", newText = "a + b"}]

The check command is ours, but it runs code the agent wrote, so it never runs
less confined than the mode allows: in bubblewrap in ``bwrap`` mode, and in
``workspace-tools`` mode where bubblewrap works; otherwise (and in
``unsandboxed`` mode) as a limited plain process (``tracetune.eval.sandbox``).
"""

from __future__ import annotations

import shutil
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracetune.errors import TracetuneError
from tracetune.eval.sandbox import SandboxLimits, SandboxMode, SandboxResult, checks_confined, run_command, run_sandboxed

Split = Literal["train", "heldout"]
Difficulty = Literal["easy", "medium", "hard"]


class SolutionStep(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    tool: Literal["edit", "write"]
    path: str

    @property
    def arguments(self) -> dict[str, Any]:
        """The tool call arguments of this step (every field but ``tool``)."""
        return {k: v for k, v in self.model_dump().items() if k != "tool"}


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    difficulty: Difficulty
    split: Split
    instruction: str
    phrasings: list[str] = Field(default_factory=list)
    check: str
    files: dict[str, str] = Field(default_factory=dict)
    check_files: dict[str, str] = Field(default_factory=dict)
    solution: list[SolutionStep] = Field(default_factory=list)

    def setup(self, workspace: Path) -> None:
        """Write the task's files into an (empty) workspace."""
        for rel, text in {**self.files, **self.check_files}.items():
            write_inside(workspace, rel, text)

    def run_check(self, workspace: Path, limits: SandboxLimits = SandboxLimits(), allow_unsandboxed: bool = False,
                  *, mode: SandboxMode | None = None) -> SandboxResult:
        """Restore the check files and run the check, as confined as ``mode`` allows (None: ``allow_unsandboxed`` decides)."""
        for rel, text in self.check_files.items():
            write_inside(workspace, rel, text)
        if mode is None:
            return run_sandboxed(self.check, workspace, limits, allow_unsandboxed=allow_unsandboxed)
        return run_command(self.check, workspace, limits, confined=checks_confined(mode))


def write_inside(workspace: Path, rel: str, text: str) -> None:
    """Write ``workspace/rel`` from the host without following links the agent may have planted.

    Any symlink (or non-directory) on the way, and whatever sits at the target,
    is removed first, so the write cannot land outside the workspace.
    """
    root = workspace.resolve()
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts:
        raise TracetuneError(f"task file path {rel!r} must stay inside the workspace")
    current = root
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            current.unlink()
        current.mkdir(exist_ok=True)
    target = current / parts[-1]
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    target.write_text(text, encoding="utf-8")


def _builtin_dir() -> Path:
    return Path(str(resources.files("tracetune.eval") / "tasks"))


def load_task(path: Path) -> Task:
    """The ``Task`` in the TOML file at ``path``; ``TracetuneError`` when unreadable or invalid."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TracetuneError(f"cannot read task file {path}: {exc}") from exc
    try:
        return Task.model_validate(data)
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TracetuneError(f"task file {path} is not valid: {bad}", hint="see tracetune/eval/live/tasks.py for the format") from exc


def load_tasks(
    splits: tuple[Split, ...] | list[Split] = ("train", "heldout"),
    ids: list[str] | None = None,
    directory: Path | None = None,
) -> list[Task]:
    """Tasks of the given splits (and ids, when given), sorted by difficulty then id."""
    folder = directory or _builtin_dir()
    tasks = [load_task(p) for p in sorted(folder.glob("*.toml"))]
    seen: set[str] = set()
    for t in tasks:
        if t.id in seen:
            raise TracetuneError(f"two tasks share the id {t.id!r} in {folder}")
        seen.add(t.id)
    if ids:
        unknown = set(ids) - seen
        if unknown:
            raise TracetuneError(f"unknown task id(s): {', '.join(sorted(unknown))}", hint=f"known: {', '.join(sorted(seen))}")
    outside = sorted(f"{t.id} ({t.split})" for t in tasks if ids and t.id in ids and t.split not in splits)
    if outside:
        raise TracetuneError(f"task(s) {', '.join(outside)} are not in the selected split(s) {', '.join(splits)}",
                             hint="add their split to the selection (eval.live.splits) or leave them out of the ids")
    order = {"easy": 0, "medium": 1, "hard": 2}
    chosen = [t for t in tasks if t.split in splits and (not ids or t.id in ids)]
    return sorted(chosen, key=lambda t: (order[t.difficulty], t.id))
