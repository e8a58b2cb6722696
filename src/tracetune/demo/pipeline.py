"""``tracetune demo``: the full recipe on scripted-teacher sessions and a built-in student.

1. The scripted teacher (``demo/teacher.py``) solves the live suite's
   *training* tasks with real tool calls in a sandbox and writes pi sessions
   into ``OUT/traces/``; for SmolLM2 it also works generated practice tasks
   (``demo/practice.py``), so the student sees more than eight tasks.
2. ``OUT/demo.toml`` is written (``demo/profiles.py``): the student (``tiny`` by
   default, or ``smollm2``), a two-variant sweep with
   few steps, an eval of fidelity on held-out sessions plus the live loop on
   the *held-out* tasks (which the teacher never solved), a local export.
3. ``tracetune run OUT/demo.toml`` runs in ``OUT/`` (rerunning resumes).

Before the teacher starts, the demo checks the live loop (``tracetune.eval.live.preflight``)
and says how the student's commands will run: in bubblewrap; without it, with no
shell at all (workspace tools only); unconfined only with ``--unsandboxed``.

Offline, on two CPU cores: the tiny student in a couple of minutes (plumbing
only: it does not learn tool calls in that budget), SmolLM2 in about 40
minutes (it learns the teacher's tool calls; figures in docs/benchmarks.md).
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


def write_demo_config(out: Path, seed: int, student: str = "tiny", unsandboxed: bool = False) -> Path:
    """Write OUT/demo.toml (the run lives in OUT itself: runs_dir = OUT's parent, name = OUT's name)."""
    from tracetune.demo.profiles import render_config

    out = out.resolve()
    path = out / "demo.toml"
    text = render_config(student, out=out, config_path=path, seed=seed, sandbox="unsandboxed" if unsandboxed else "auto")
    path.write_text(text, encoding="utf-8")
    return path


def generate_traces(out: Path, seed: int, practice: int = 0) -> int:
    """Generate the teacher sessions once (into a temp folder renamed into place)."""
    from tracetune.demo.teacher import generate_demo_traces

    traces = out / "traces"
    if not traces.is_dir():
        tmp = out / ".traces.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        generate_demo_traces(tmp, seed=seed, practice=practice)
        tmp.rename(traces)
    return len(list(traces.rglob("*.jsonl")))


def run_demo(
    out: Path, seed: int = 0, fresh: bool = False, console: Console | None = None, overrides: list[str] | None = None,
    student: str = "tiny", unsandboxed: bool = False,
) -> DemoResult:
    """Write OUT/demo.toml for ``student``, check the live loop, generate the traces (once), run it.

    ``overrides`` as ``--set``; ``unsandboxed``: the student's commands run unconfined (``--unsandboxed``).
    """
    from tracetune.demo.profiles import PROFILES
    from tracetune.pipeline.config import load_config
    from tracetune.pipeline.runner import run

    console = console or Console()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    config_path = write_demo_config(out, seed, student, unsandboxed)
    config = load_config(config_path, overrides)
    if config.eval.live is not None:
        announce_sandbox(config.eval.live, console)
    with console.status("scripted teacher solving the training tasks..."):
        sessions = generate_traces(out, seed, PROFILES[student].practice)
    console.print(f"[green]✓[/] teacher   {sessions} pi sessions in {out / 'traces'}", highlight=False)
    result = run(config, console=console)
    seconds = time.monotonic() - start
    results = _results(result.run_dir)
    return DemoResult(result.run_dir, config_path, seconds, sessions, _scores(results), result.ran, _sandbox(results))


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


HEADLINE = ("live.success_rate", "live.valid_call_rate", "live.self_ended_rate", "fidelity.parse_rate",
            "fidelity.valid_call", "fidelity.action_match", "fidelity.tool_match", "fidelity.args_similarity")


def headline(scores: dict[str, dict[str, Any]]) -> list[str]:
    """The metrics worth a line in the summary (live success first), leaving out those no model has."""
    return [n for n in HEADLINE if any(scores.get(r, {}).get(n) is not None for r in ("base", "tuned"))]


def print_summary(result: DemoResult, console: Console) -> None:
    run_dir = result.run_dir
    table = Table(title="base vs tuned (held-out)", show_edge=False)
    for col in ("metric", "base", "tuned"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in headline(result.scores):
        row = [result.scores.get(role, {}).get(name) for role in ("base", "tuned")]
        table.add_row(name, *(f"{v:.3f}" if isinstance(v, float) else "–" if v is None else str(v) for v in row))
    console.print(table)
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
    console.print(f"demo finished in {result.seconds:.0f}s", highlight=False)
