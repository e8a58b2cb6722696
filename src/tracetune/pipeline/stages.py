"""The recipe's stages: student -> prepare -> sweep -> eval -> card -> publish.

Each function adapts one stage's public Python function to the runner: it
reads the run config and earlier stages' folders from the context and writes
its outputs into the folder it is given. Run folder layout::

    student/   the built-in student when [student] model = "tiny" or "smollm2" (else a pointer)
    prepare/   dataset/, prepare_stats.json, redaction_report.json, report.html, ...
    sweep/     selection_rule.json, variants/<name>/ (adapter/, metrics.json), trackio/, selection.json
    eval/      results.json, report.html, live sessions
    card/      README.md (the model card)
    publish/   adapter/, merged/, publish.json
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tracetune.errors import TracetuneError
from tracetune.pipeline.stage import Stage, StageContext
from tracetune.prepare.summary import PrepareSummary
from tracetune.pipeline.student import (BUILTIN_STUDENTS, STUDENT_POINTER, build_builtin_student,
                                       student_path)
from tracetune.sweep.selection import selected_adapter
from tracetune.util.files import atomic_write_json, sha256_file

def student_model(ctx: StageContext) -> str:
    """The student as a loadable id or folder (the built tiny student, or the configured model)."""
    return student_path(ctx.path("student"), ctx.config.student.model)


def _student(ctx: StageContext, out: Path) -> None:
    cfg = ctx.config.student
    if cfg.model in BUILTIN_STUDENTS:
        build_builtin_student(cfg.model, out, seed=cfg.tiny_seed)
        return
    path = cfg.model
    if cfg.revision and not Path(cfg.model).expanduser().is_dir():
        from huggingface_hub import snapshot_download

        path = snapshot_download(cfg.model, revision=cfg.revision)
    atomic_write_json(out / STUDENT_POINTER, {"model": cfg.model, "revision": cfg.revision, "path": str(path)})


def _trace_paths(ctx: StageContext) -> list[Path]:
    """Local folders for the configured traces; ``hf://datasets/...`` sources are downloaded (cached) first."""
    from tracetune.readers.discover import resolve_sources

    if ctx.trace_paths is None:  # resolved once per run: the inputs hash and the stage share it
        if not ctx.config.traces.paths:
            raise TracetuneError("The run config names no traces", hint="set [traces] paths = ['~/.pi/agent/sessions']")
        specs = [p if str(p).startswith("hf://") else Path(p).expanduser() for p in ctx.config.traces.paths]
        local, sources = resolve_sources(specs)
        ctx.trace_paths, ctx.hub_sources = local, [s.to_dict() for s in sources]
        ctx.input_labels = {str(path): str(spec) for path, spec in zip(local, ctx.config.traces.paths)}
    return ctx.trace_paths


def _prepare(ctx: StageContext, out: Path) -> dict[str, Any]:
    from rich.markup import escape

    from tracetune.prepare.notes import prepare_notes
    from tracetune.prepare.stage import prepare

    config = ctx.config.prepare.model_copy(update={"student": student_model(ctx)})
    fmt = None if ctx.config.traces.format == "auto" else ctx.config.traces.format
    paths = _trace_paths(ctx)
    if ctx.hub_sources:
        ctx.record("hub_sources", ctx.hub_sources)  # each Hub dataset pinned to the commit that was read
    result = prepare(config, paths, out, fmt=fmt, progress=ctx.progress, read_options=ctx.config.traces.read_options())
    for warning in prepare_notes(result.stats):  # skipped files, dropped turns by agent and reason, with the fix
        ctx.console.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False)
    check_splits(result.stats, config.max_length)
    return {"sessions": result.stats.read.sessions, "turns_supervised": result.stats.turns.supervised}


def check_splits(stats: PrepareSummary, max_length: int, splits: tuple[str, ...] = ("train", "eval")) -> None:
    """Refuse, before any training, a split with no example, naming its sessions and why their turns were dropped."""
    for split in splits:
        if stats.split_examples(split).examples:
            continue
        sessions = [s for s in stats.sessions if s.split == split]
        if split == "eval" and not sessions:
            raise TracetuneError(
                "the eval split holds no session, so nothing can select a variant or be evaluated",
                hint="raise [prepare] eval_fraction, or give traces from more than one session family",
            )
        causes = "; ".join(
            f"{s.source}: {s.supervised} of {s.targets} turns kept"
            + (f", dropped {', '.join(f'{k} {v}' for k, v in s.dropped_by_reason.items())}" if s.dropped_by_reason else "")
            + f", prefix {s.prefix_tokens:,} tokens"
            for s in sessions
        ) or "no session"
        too_long = any("too_long" in s.dropped_by_reason for s in sessions)
        hint = (f"'too_long': a turn with its tool result does not fit max_length={max_length:,}; raise [prepare] "
                "max_length (and [train] max_length), or lower clip_tool_result_chars") if too_long else (
                "see prepare.failed/report.html for what each session gave")
        raise TracetuneError(f"the {split} split holds 0 examples ({causes})", hint=hint)


def _verify_prepare(out: Path) -> str | None:
    missing = [n for n in ("dataset", "prepare_stats.json", "eval_episodes.jsonl") if not (out / n).exists()]
    return f"missing {', '.join(missing)}" if missing else None


def _sweep(ctx: StageContext, out: Path) -> dict[str, Any]:
    from tracetune.sweep.runner import run_sweep

    train = ctx.config.train.model_copy(update={"model": student_model(ctx)})

    def on_rule_written(path: Path, sha256: str) -> None:
        ctx.record("selection_rule_sha256", sha256)

    def on_variant(outcome: Any) -> None:
        mark = "[green]✓[/]" if outcome.status == "ok" else "[red]✗[/]"
        figure = outcome.metrics.get(ctx.config.sweep.rule.metric)
        ctx.console.print(f"  {mark} variant {outcome.name}  {ctx.config.sweep.rule.metric}={figure}", highlight=False)

    def on_step(variant: str, step: int, total: int, logs: dict[str, float]) -> None:
        ctx.progress(f"train {variant}", step, total, f"loss {logs['loss']:.3f}" if "loss" in logs else "")

    result = run_sweep(ctx.config.sweep, train, ctx.path("prepare") / "dataset", out,
                       on_rule_written=on_rule_written, on_variant=on_variant, on_step=on_step)
    return {"selected": result.winner}


def _verify_sweep(out: Path) -> str | None:
    for name in ("selection_rule.json", "selection.json"):
        if not (out / name).is_file():
            return f"missing {name}"
    try:
        selected_adapter(out)
    except TracetuneError as exc:
        return exc.message
    return None


def eval_config(ctx: StageContext) -> Any:
    """The eval settings, with the live loop offered the tools and system prompt the student was trained with."""
    cfg = ctx.config.eval
    if cfg.live is None:
        return cfg
    updates: dict[str, Any] = {}
    tools = ctx.path("prepare") / "tools.json"
    if cfg.live.tools_file is None and tools.is_file():
        updates["tools_file"] = str(tools)
    if cfg.live.system_prompt is None and ctx.config.prepare.system_prompt:
        updates["system_prompt"] = ctx.config.prepare.resolved_system_prompt()
    return cfg.model_copy(update={"live": cfg.live.model_copy(update=updates)})


def _eval(ctx: StageContext, out: Path) -> dict[str, Any]:
    from tracetune.eval.stage import evaluate

    result = evaluate(
        eval_config(ctx),
        ctx.path("prepare"),
        student_model(ctx),
        selected_adapter(ctx.path("sweep")),
        out,
        progress=lambda role, done, total: ctx.progress(f"eval {role}", done, total),
        log=lambda msg: ctx.console.print(f"  [dim]{msg}[/]", highlight=False),
    )
    return {"notes": result.notes}


def _card(ctx: StageContext, out: Path) -> dict[str, Any]:
    from tracetune.card.model_card import write_model_card

    card = write_model_card(ctx.run_dir, out / "README.md")
    return {"card_sha256": sha256_file(card)}


def _publish(ctx: StageContext, out: Path) -> dict[str, Any]:
    from tracetune.publish.export import export_local
    from tracetune.publish.hub import push_to_hub, token_from_env

    cfg = ctx.config.publish
    facts: dict[str, Any] = {"exported": False, "pushed": None}
    card = ctx.path("card") / "README.md"
    if cfg.export:
        export_local(student_model(ctx), selected_adapter(ctx.path("sweep")), out, merge=cfg.merge, card=card)
        facts["exported"] = True
        if cfg.export_dir:
            _copy_to(out, Path(cfg.export_dir).expanduser())
            facts["export_dir"] = str(cfg.export_dir)
    if cfg.repo_id:
        token = token_from_env(cfg.token_env)
        if token is None:
            facts["pushed"] = f"skipped: ${cfg.token_env} is not set"
            ctx.console.print(f"[yellow]not pushed to {cfg.repo_id}:[/] ${cfg.token_env} is not set", highlight=False)
        else:
            adapter = out / "adapter" if cfg.export else _adapter_with_card(ctx, out, card)
            merged = out / "merged" if cfg.push_merged and cfg.export and cfg.merge else None
            pushed = push_to_hub(cfg.repo_id, adapter, token, private=cfg.private, merged_dir=merged,
                                 merged_repo_id=cfg.merged_repo_id)
            facts["pushed"] = {"repo_id": pushed.repo_id, "url": pushed.url, "private": pushed.private,
                               "uploaded": pushed.uploaded}
    atomic_write_json(out / "publish.json", facts)
    return facts


def _adapter_with_card(ctx: StageContext, out: Path, card: Path) -> Path:
    dest = out / "adapter"
    shutil.copytree(selected_adapter(ctx.path("sweep")), dest)
    shutil.copy2(card, dest / "README.md")
    return dest


def _copy_to(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def _remote_sweep(ctx: StageContext, out: Path) -> dict[str, Any]:
    from tracetune.pipeline.remote_stage import remote_sweep

    return remote_sweep(ctx, out)


def preflight(config: Any) -> str | None:
    """Check, before any stage runs, what would otherwise fail after the training: the live loop's sandbox.

    Returns a line saying how the live loop will confine the student's commands (None: no live loop);
    raises a ``TracetuneError`` naming the config key to change.
    """
    if config.eval.live is None:
        return None
    from tracetune.eval.live import describe_mode, preflight as live_preflight

    return describe_mode(live_preflight(config.eval.live))


def run_outputs(run_dir: Path, config: Any) -> list[tuple[str, str]]:
    """(label, path or command) for each artifact a user opens after a run, when it exists."""
    places = [("data report", run_dir / "prepare" / "report.html"), ("eval report", run_dir / "eval" / "report.html"),
              ("eval figures", run_dir / "eval" / "results.json"), ("model card", run_dir / "card" / "README.md"),
              ("merged model", run_dir / "publish" / "merged"), ("adapter", run_dir / "publish" / "adapter")]
    out = [(label, str(path)) for label, path in places if path.exists()]
    if (run_dir / "sweep" / "trackio").is_dir():
        out.append(("dashboard", f"tracetune dashboard {run_dir}"))
    return out


def default_stages(on: str = "local") -> list[Stage]:
    """The recipe; ``on="hf-jobs"`` runs the sweep on Hugging Face Jobs and the rest locally."""
    sweep = _remote_sweep if on == "hf-jobs" else _sweep
    return [
        Stage("student", _student, sections=("student",)),
        Stage("prepare", _prepare, sections=("traces", "prepare"), needs=("student",), input_paths=_trace_paths,
              verify=_verify_prepare),
        Stage("sweep", sweep, sections=("train", "sweep"), needs=("student", "prepare"), atomic=False,
              verify=_verify_sweep),
        Stage("eval", _eval, sections=("eval",), needs=("student", "prepare", "sweep")),
        Stage("card", _card, needs=("prepare", "sweep", "eval")),
        Stage("publish", _publish, sections=("publish",), needs=("student", "sweep", "card")),
    ]
