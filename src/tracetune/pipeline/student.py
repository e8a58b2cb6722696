"""The run's student: the built-in ones (``tiny``, ``smollm2``) and where a run keeps its student.

A built-in student is written into the run's ``student/`` folder; any other model is recorded
there as a pointer (``student.json``: the model, the revision, the local path it resolved to).
"""

from __future__ import annotations

import json
from pathlib import Path

from tracetune.errors import TracetuneError

STUDENT_POINTER = "student.json"
BUILTIN_STUDENTS = ("tiny", "smollm2")


def build_builtin_student(name: str, out: Path, seed: int = 0) -> Path:
    """Write a built-in student into ``out``: the tiny random one, or SmolLM2-135M-Instruct (offline)."""
    if name == "smollm2":
        from tracetune.train.smollm2 import materialize_smollm2

        return materialize_smollm2(out)
    from tracetune.train.student import build_tiny_student

    return build_tiny_student(out, seed=seed)


def student_path(student_dir: Path, model: str) -> str:
    """The student as a loadable folder or id, from a run's ``student/`` folder and ``[student] model``."""
    if model in BUILTIN_STUDENTS:
        return str(student_dir)
    pointer = student_dir / STUDENT_POINTER
    if pointer.is_file():
        return json.loads(pointer.read_text(encoding="utf-8"))["path"]
    return model


def refuse_builtin_name(model: str, flag: str) -> None:
    """A clear error when a built-in student's name is given where a model folder or hub id is needed.

    Without it the name is looked up on the Hub (``smollm2`` is no repository) and fails
    after a minute of retries.
    """
    if model in BUILTIN_STUDENTS and not Path(model).exists():
        raise TracetuneError(
            f"{flag} {model}: '{model}' is a built-in student, not a model folder or hub id",
            hint=f"write it to a folder once with `tracetune student {model} --out students/{model}` and pass "
            f"{flag} students/{model} (a run config's [student] model = \"{model}\" does this for you)",
        )
