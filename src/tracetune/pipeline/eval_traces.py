"""Score a finished run's base and selected tuned model on sessions given now.

``evaluate_run(run_dir, traces)`` reads the run's own config from its
``manifest.json``, prepares the given sessions with the run's prepare
settings (same student tokenizer and chat template, same redaction, same
max_length and tool handling) with every session held out, and scores base
and tuned on them with the run's eval settings. This is how a user checks the
student on this week's sessions. The results go to a folder of their own
(default ``RUN/evals/<time>/``): ``prepared/`` (the data report among it),
``results.json`` and ``report.html``, as the run's eval writes them.

The live loop and Inspect benchmarks are not rerun here: they do not depend
on the traces given.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from tracetune.errors import TracetuneError
from tracetune.pipeline.config import RunConfig, parse_override, validate_config
from tracetune.pipeline.manifest import read_manifest
from tracetune.pipeline.stages import check_splits
from tracetune.pipeline.student import BUILTIN_STUDENTS, student_path
from tracetune.sweep.selection import selected_adapter

Progress = Callable[[str, int, int], None]


def run_config(run_dir: Path, overrides: list[str] | None = None) -> RunConfig:
    """The config a finished run used (from its manifest), with ``key.path=value`` overrides."""
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise TracetuneError(f"{run_dir} is not a tracetune run (no manifest.json)", hint="pass the folder `tracetune run` wrote, e.g. runs/NAME")
    manifest = read_manifest(run_dir)
    data: dict[str, Any] = json.loads(json.dumps(manifest.config))
    for item in overrides or []:
        key, value = parse_override(item)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    data.get("train", {}).pop("model", None)  # [student] names the model once; the dump repeats it
    data.get("prepare", {}).pop("student", None)
    return validate_config(data, source=str(manifest_path))


def run_student(run_dir: Path, config: RunConfig) -> str:
    """The run's student as a loadable folder or id (a built-in student lives in the run)."""
    folder = run_dir / "student"
    if config.student.model in BUILTIN_STUDENTS and not folder.is_dir():
        raise TracetuneError(f"{folder} is missing", hint="rerun `tracetune run` to rebuild the student")
    return student_path(folder, config.student.model)


def evaluate_run(
    run_dir: str | Path,
    traces: list[str | Path],
    out_dir: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    fmt: str | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
):
    """Prepare ``traces`` with the run's settings (all held out), then score base and tuned on them."""
    from tracetune.eval.stage import evaluate
    from tracetune.prepare.stage import prepare
    from tracetune.readers.discover import resolve_sources

    say = log or (lambda _msg: None)
    run = Path(run_dir)
    config = run_config(run, overrides)
    adapter = selected_adapter(run / "sweep")
    student = run_student(run, config)
    out = Path(out_dir) if out_dir else run / "evals" / time.strftime("%Y%m%d-%H%M%S")
    if not traces:
        raise TracetuneError("no traces given", hint="pass --traces PATH (repeatable): session files or folders")
    specs = [t if str(t).startswith("hf://") else Path(t).expanduser() for t in traces]
    local, _sources = resolve_sources(specs)
    prepare_config = config.prepare.model_copy(update={"student": student})
    say(f"preparing {len(local)} trace source(s) with {run.name}'s settings, every session held out")
    prepared = prepare(prepare_config, local, out / "prepared", fmt=fmt or _format(config), all_eval=True,
                       read_options=config.traces.read_options(),
                       progress=(lambda step, done, total: progress(f"prepare {step}", done, total)) if progress else None)
    check_splits(prepared.stats, prepare_config.max_length, splits=("eval",))
    eval_config = config.eval.model_copy(update={"live": None, "inspect_benchmarks": []})
    return evaluate(eval_config, out / "prepared", student, adapter, out, progress=progress, log=say)


def _format(config: RunConfig) -> str | None:
    return None if config.traces.format == "auto" else config.traces.format
