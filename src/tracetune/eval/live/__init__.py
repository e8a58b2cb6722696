"""The live agent loop: a model acts as a coding agent on a task suite, in a sandbox.

``run_live(config, backend, tasks, out_dir)`` runs every task once, writes
one pi session per episode under ``out_dir/sessions/<backend>/`` and
``out_dir/live_results_<backend>.json``, and returns a ``LiveResult``.
``run_live_pi(config, endpoint, name, tasks, out_dir)`` does the same with the
real pi CLI as the harness, against a served model (``pi_harness.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from tracetune.eval.backends.base import Backend
from tracetune.eval.live.config import LiveConfig
from tracetune.eval.live.loop import DEFAULT_SYSTEM_PROMPT, run_episode
from tracetune.eval.live.pi_harness import PiEndpoint, run_live_pi
from tracetune.eval.live.results import EpisodeResult, LiveResult, run_suite
from tracetune.eval.live.tasks import Task, load_tasks
from tracetune.eval.sandbox import require_sandbox

__all__ = ["DEFAULT_SYSTEM_PROMPT", "EpisodeResult", "LiveConfig", "LiveResult", "PiEndpoint", "Task", "load_tasks",
           "run_episode", "run_live", "run_live_pi"]


def run_live(
    config: LiveConfig,
    backend: Backend,
    tasks: Sequence[Task] | None = None,
    out_dir: str | Path = "live",
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> LiveResult:
    """Run ``backend`` on ``tasks`` (default: the config's splits and ids of the built-in suite)."""
    require_sandbox(config.allow_unsandboxed)
    return run_suite(config, backend.name, lambda task, sessions: run_episode(task, backend, config, sessions),
                     tasks, out_dir, on_episode)
