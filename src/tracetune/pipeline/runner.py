"""Run stages in order into one run folder, skipping what is done and resuming what is not.

Each stage owns one folder of the run (``prepare/``, ``sweep/``, ...). Its
inputs hash covers the config sections it reads, the input files it reads and
the recorded output hashes of the stages it depends on. A stage is skipped
when the manifest says it finished with the same inputs hash and its folder
still hashes to what was recorded. Otherwise it runs:

- an *atomic* stage writes into a temporary folder renamed into place on
  success, so a crash leaves the previous state, never a half-written one;
- a *resumable* stage (the sweep) writes in place and resumes itself; its
  folder is cleared first only when its inputs changed since the partial run.

The stage's status becomes ``done`` only after its outputs are in place, with
the sha256 of every file it wrote. Files added to a finished stage's folder
later (e.g. the ``datasets`` cache that training writes beside the prepared
dataset) do not make it stale; a recorded file changed or gone does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from tracetune.errors import TracetuneError
from tracetune.pipeline.config import RunConfig
from tracetune.pipeline.files import hash_files, hash_paths, input_record, remove_stale_temps, staging_dir
from tracetune.pipeline.manifest import (
    Manifest,
    error_of,
    input_changes,
    library_versions,
    load_or_new,
    now,
    write_manifest,
)
from tracetune.pipeline.stage import Stage, StageContext
from tracetune.pipeline.stages import default_stages
from tracetune.util.files import sha256_file


@dataclass
class RunResult:
    run_dir: Path
    manifest: Manifest
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def inputs_hash(stage: Stage, ctx: StageContext) -> str:
    """A sha256 over what ``stage`` reads: its config sections, its needed stages' outputs and its input paths."""
    data: dict[str, Any] = {
        "sections": ctx.config.section_hash(*stage.sections) if stage.sections else "",
        "needs": {n: ctx.manifest.stage(n).outputs for n in stage.needs},
    }
    if stage.input_paths is not None:
        data["paths"] = hash_paths(stage.input_paths(ctx))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def is_current(stage: Stage, ctx: StageContext, ih: str) -> bool:
    """True when the stage finished with these inputs and its outputs are intact."""
    rec = ctx.manifest.stages.get(stage.name)
    out = ctx.path(stage.name)
    if rec is None or rec.status != "done" or rec.inputs_hash != ih or not out.is_dir():
        return False
    if stage.verify is not None and stage.verify(out) is not None:
        return False
    return bool(rec.outputs) and all(
        (out / rel).is_file() and sha256_file(out / rel) == sha for rel, sha in rec.outputs.items()
    )


def record_inputs(stages: list[Stage], ctx: StageContext) -> None:
    """Record every input file (size, sha256) in the manifest; warn when they changed since this folder's last run."""
    paths = [p for s in stages if s.input_paths is not None for p in s.input_paths(ctx)]
    current = input_record(paths, ctx.input_labels, ctx.hub_sources)
    change = input_changes(ctx.manifest.inputs, current)
    if change:
        ctx.console.print(f"[yellow]warning:[/] {escape(change)}", highlight=False)
    ctx.manifest.inputs = current


def run_stage(stage: Stage, ctx: StageContext, force: bool = False) -> bool:
    """Run one stage unless it is current; returns True when it ran."""
    ctx.current = stage.name
    ih = inputs_hash(stage, ctx)
    rec = ctx.manifest.stage(stage.name)
    if not force and is_current(stage, ctx, ih):
        return False
    out = ctx.path(stage.name)
    remove_stale_temps(ctx.run_dir)
    if not stage.atomic and out.exists() and (force or rec.inputs_hash != ih):
        shutil.rmtree(out)
    rec.status, rec.inputs_hash, rec.started_at, rec.ended_at, rec.error = "running", ih, now(), None, None
    rec.outputs = {}
    write_manifest(ctx.run_dir, ctx.manifest)
    start = time.monotonic()
    try:
        extra = _execute(stage, ctx, out)
    except KeyboardInterrupt:
        rec.status, rec.ended_at = "interrupted", now()
        raise
    except BaseException as exc:
        rec.status, rec.ended_at, rec.error = "error", now(), error_of(exc)
        raise
    rec.extra.update(extra or {})
    rec.outputs = hash_files(out)
    rec.status, rec.ended_at, rec.seconds = "done", now(), round(time.monotonic() - start, 2)
    write_manifest(ctx.run_dir, ctx.manifest)
    return True


def _execute(stage: Stage, ctx: StageContext, out: Path) -> dict[str, Any] | None:
    if stage.atomic:
        with staging_dir(out, keep_failed=True) as tmp:
            extra = stage.run(ctx, tmp)
            _check(stage, tmp)
        return extra
    out.mkdir(parents=True, exist_ok=True)
    extra = stage.run(ctx, out)
    _check(stage, out)
    return extra


def _check(stage: Stage, out: Path) -> None:
    problem = stage.verify(out) if stage.verify is not None else None
    if problem:
        raise TracetuneError(f"Stage '{stage.name}' finished but its outputs are incomplete: {problem}")


def run(
    config: RunConfig,
    run_dir: Path | None = None,
    stages: list[Stage] | None = None,
    console: Console | None = None,
    force: tuple[str, ...] = (),
) -> RunResult:
    """Run the recipe into ``run_dir`` (default ``runs_dir/name``), resuming a previous attempt."""
    if stages is None:
        stages = default_stages()
    run_dir = Path(run_dir or config.run_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    console = console or Console()
    manifest = load_or_new(run_dir, config.name)
    manifest.status, manifest.error, manifest.ended_at, manifest.started_at = "started", None, None, now()
    manifest.config = config.model_dump(mode="json")
    manifest.libraries = library_versions()
    ctx = StageContext(config, run_dir, manifest, console, folders={s.name: s.folder for s in stages})
    result = RunResult(run_dir, manifest)
    try:
        record_inputs(stages, ctx)
        _run_all(stages, ctx, result, force)
    except KeyboardInterrupt:
        manifest.status, manifest.ended_at = "cancelled", now()
        write_manifest(run_dir, manifest)
        raise
    except BaseException as exc:
        manifest.status, manifest.ended_at, manifest.error = "error", now(), error_of(exc)
        write_manifest(run_dir, manifest)
        raise
    manifest.status, manifest.ended_at = "success", now()
    write_manifest(run_dir, manifest)
    return result


def _run_all(stages: list[Stage], ctx: StageContext, result: RunResult, force: tuple[str, ...]) -> None:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("[dim]eta[/]"), TimeRemainingColumn())
    with Progress(*columns, console=ctx.console, transient=True) as progress:
        task = progress.add_task("run", total=len(stages))
        details: dict[str, TaskID] = {}

        def on_progress(step: str, done: int, total: int, note: str = "") -> None:
            """One bar per step (each keeps its own rate, so its ETA); only the latest step's bar shows
            (a step that reports again, such as a sweep's winner trained on past its rung, shows again)."""
            if step not in details:
                details[step] = progress.add_task("", total=total or None)
            for other, task_id in details.items():
                progress.update(task_id, visible=other == step)
            label = f"  [dim]{escape(step)}{escape(' ' + note) if note else ''}[/]"
            progress.update(details[step], description=label, completed=done, total=total or None)

        ctx.on_progress = on_progress
        for stage in stages:
            progress.update(task, description=f"[bold]{stage.name}[/]")
            start = time.monotonic()
            ran = run_stage(stage, ctx, force=stage.name in force or "all" in force)
            (result.ran if ran else result.skipped).append(stage.name)
            note = f"done in {time.monotonic() - start:.1f}s" if ran else "unchanged, skipped"
            mark = "[green]✓[/]" if ran else "[dim]↷[/]"
            ctx.console.print(f"{mark} {stage.name:<8} {note}  [dim]{ctx.path(stage.name)}[/]")
            progress.advance(task)
            for detail in details.values():
                progress.update(detail, visible=False)
            details.clear()
