"""The live agent loop: a model acts as a coding agent on a task suite, in a sandbox.

``preflight(config)`` checks what the loop needs (the sandbox mode, the tasks,
the tools file, pi for the pi harness) and returns the mode it will run in,
so a pipeline can fail before any training. ``run_live(config, backend,
tasks, out_dir)`` runs every task once, writes one pi session per episode
under ``out_dir/sessions/<backend>/`` and ``out_dir/live_results_<backend>.json``,
and returns a ``LiveResult``. ``run_live_pi(config, endpoint, name, tasks,
out_dir)`` does the same with the real pi CLI as the harness, against a
served model (``pi_harness.py``). What runs where in each sandbox mode:
``tracetune.eval.sandbox``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from tracetune.errors import TracetuneError
from tracetune.eval.backends.base import Backend
from tracetune.eval.live.config import LiveConfig
from tracetune.eval.live.loop import DEFAULT_SYSTEM_PROMPT, run_episode
from tracetune.eval.live.pi_harness import PiEndpoint, run_live_pi
from tracetune.eval.live.results import EpisodeResult, LiveResult, run_suite
from tracetune.eval.live.tasks import Task, load_tasks
from tracetune.eval.sandbox import SandboxMode, describe_mode, mode_record

__all__ = ["DEFAULT_SYSTEM_PROMPT", "EpisodeResult", "LiveConfig", "LiveResult", "PiEndpoint", "Task", "describe_mode",
           "load_tasks", "preflight", "run_episode", "run_live", "run_live_pi"]


def preflight(config: LiveConfig) -> SandboxMode:
    """The sandbox mode the live loop will run in here ("bwrap", "workspace-tools" or "unsandboxed").

    Checks, without running a model: the sandbox setting (bubblewrap installed
    and able to start a sandbox where required), that the configured splits
    and task ids name tasks, a configured tools file, and pi for the pi
    harness. Raises a TracetuneError naming the config key to change
    (``eval.live.sandbox``, ``eval.live.task_ids``, ...).
    """
    mode = config.sandbox_mode()
    try:
        load_tasks(config.splits, config.task_ids or None)
    except TracetuneError as exc:
        raise TracetuneError(f"eval.live.splits / eval.live.task_ids: {exc.message}", hint=exc.hint) from exc
    if config.tools_file:
        from tracetune.eval.live.specs import offered_tools

        try:
            offered_tools(config.tools_file)
        except TracetuneError as exc:
            raise TracetuneError(f"eval.live.tools_file: {exc.message}", hint=exc.hint) from exc
    if config.harness == "pi":
        from tracetune.eval.harness.pi_cli import find_pi

        try:
            find_pi(config.pi_bin)
        except TracetuneError as exc:
            raise TracetuneError(f'eval.live.harness = "pi": {exc.message}',
                                 hint=f"{exc.hint}; or set eval.live.pi_bin to pi's dist/cli.js, "
                                      'or eval.live.harness = "builtin"') from exc
    return mode


def run_live(
    config: LiveConfig,
    backend: Backend,
    tasks: Sequence[Task] | None = None,
    out_dir: str | Path = "live",
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> LiveResult:
    """Run ``backend`` on ``tasks`` (default: the config's splits and ids of the built-in suite)."""
    mode = config.sandbox_mode()
    return run_suite(config, backend.name, lambda task, sessions: run_episode(task, backend, config, sessions, mode),
                     tasks, out_dir, on_episode, sandbox=mode_record(mode))
