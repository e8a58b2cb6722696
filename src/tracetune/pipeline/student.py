"""The run's student: the built-in ones (``tiny``, ``smollm2``) and where a run keeps its student.

A built-in student is written into the run's ``student/`` folder; any other model is recorded
there as a pointer (``student.json``: the model, the revision, the local path it resolved to).
"""

from __future__ import annotations

import json
from pathlib import Path

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
