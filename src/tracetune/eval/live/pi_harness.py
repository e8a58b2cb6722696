"""The live loop with the real pi CLI as the harness: pi drives a served model on each task.

``run_live_pi(config, endpoint, name, tasks, out_dir)`` is ``run_live`` for
``harness = "pi"``: the same tasks, the same workspace setup and check
command (``Task.setup`` / ``Task.run_check``), the same ``EpisodeResult`` and
``LiveResult``, the same files (``out_dir/sessions/<name>/`` and
``out_dir/live_results_<name>.json``). What differs is who runs the loop: pi
(``eval.harness.run_pi_task``) sends its own system prompt and tools (the
built-in ones matching our suite: read, bash, edit, write, ls, find, grep),
executes the calls in the workspace, and writes its own session file, which
is read back with tracetune's pi reader and scored.

Differences from the built-in loop, by design of pi: there is no turn limit
(``episode_timeout_s`` bounds an episode; a stopped one ends ``timeout``);
output the server could not parse as a tool call reaches pi as text, so
``parse_errors`` stays empty; token counts are those pi recorded (zero where
the server streams no usage, as ``transformers serve`` does); ``tools_file``,
``temperature`` and ``seed`` are pi's, not the config's. A configured
``system_prompt`` (the one the student was trained with; the pipeline passes
prepare's) replaces pi's own through ``--system-prompt``; pi appends the date
and working directory to it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tracetune.conversation.types import Message
from tracetune.errors import TracetuneError
from tracetune.eval import sandbox
from tracetune.eval.live.config import LiveConfig
from tracetune.eval.live.loop import is_valid_call
from tracetune.eval.live.results import EndedBy, EpisodeResult, LiveResult, run_suite
from tracetune.eval.live.tasks import Task
from tracetune.util.workspace import fixed_workspace

#: pi's built-in tools that match the suite's tools (pi enables read, bash, edit, write by default).
PI_TOOLS = ["read", "bash", "edit", "write", "ls", "find", "grep"]


@dataclass(frozen=True)
class PiEndpoint:
    """An OpenAI-compatible server pi talks to, and the model name it asks for."""

    base_url: str
    model_name: str
    api_key: str | None = None


def check_pi_harness(config: LiveConfig, *, needs_serving: bool) -> None:
    """Fail before any model is loaded: node and pi, the serve extra (when serving), the sandbox."""
    from tracetune.eval.harness.pi_cli import find_pi
    from tracetune.engines.serve import require_serving

    find_pi(config.pi_bin)
    if needs_serving:
        require_serving()
    config.sandbox_mode()


def pi_sandbox(config: LiveConfig, endpoint_url: str) -> bool:
    """Whether pi runs in bubblewrap; refused where it cannot be, unless the config says ``sandbox = "unsandboxed"``."""
    if config.sandbox_mode() == "unsandboxed":
        return False
    if urllib.parse.urlsplit(endpoint_url).scheme == "http":
        return True
    raise TracetuneError(f"cannot sandbox pi: the pi sandbox relays plain http:// endpoints only ({endpoint_url})",
                         hint='serve over http://, or set eval.live.sandbox = "unsandboxed" '
                              "(formerly allow_unsandboxed = true; no isolation!)")


def run_live_pi(
    config: LiveConfig,
    endpoint: PiEndpoint,
    name: str,
    tasks: Sequence[Task] | None = None,
    out_dir: str | Path = "live",
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> LiveResult:
    """Run pi against ``endpoint`` on ``tasks`` (default: the config's splits and ids); ``name`` is the side."""
    check_pi_harness(config, needs_serving=False)
    return run_suite(config, name, lambda task, sessions: run_pi_episode(task, endpoint, config, sessions),
                     tasks, out_dir, on_episode, sandbox=sandbox.mode_record(config.sandbox_mode()))


def run_pi_episode(task: Task, endpoint: PiEndpoint, config: LiveConfig, sessions_dir: Path) -> EpisodeResult:
    """One task in a fresh workspace (removed afterwards); pi's session file is copied to ``sessions_dir``."""
    from tracetune.eval.harness.pi_cli import run_pi_task

    started = time.monotonic()
    with fixed_workspace("live-pi", task.id) as workspace:  # same path every run: same prompts for a seed
        task.setup(workspace)
        run = run_pi_task(workspace, task.instruction, endpoint.base_url, endpoint.model_name,
                          timeout=config.episode_timeout_s, pi_bin=config.pi_bin, sessions_out=sessions_dir,
                          api_key=endpoint.api_key, max_tokens=config.max_new_tokens, tools=PI_TOOLS,
                          system_prompt=config.system_prompt, sandbox=pi_sandbox(config, endpoint.base_url))
        check = task.run_check(workspace, config.limits(), mode=config.sandbox_mode())
    messages = _assistant_turns(run.sessions)
    calls = [c for m in messages for c in m.tool_calls]
    path = run.session_paths[-1] if run.session_paths else None
    prompt_tokens, completion_tokens, pi_error = _usage(path)
    ended = _ended_by(messages, run.timed_out)
    return EpisodeResult(
        task_id=task.id, split=task.split, difficulty=task.difficulty, success=check.exit_code == 0,
        ended_by=ended, turns=len(messages), tool_calls=len(calls), valid_calls=sum(map(is_valid_call, calls)),
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, session_path=str(path or ""),
        check_output=check.output[-1000:], error=_error(run, ended, pi_error),
        seconds=round(time.monotonic() - started, 3),
    )


def _assistant_turns(sessions) -> list[Message]:
    """Every assistant turn of pi's sessions, once (an entry shared by several episodes counts once)."""
    seen: set[str] = set()
    turns = []
    for session in sessions:
        for episode in session.episodes:
            for m in episode.messages:
                key = m.entry_id or str(id(m))
                if m.role == "assistant" and key not in seen:
                    seen.add(key)
                    turns.append(m)
    return turns


def _ended_by(turns: list[Message], timed_out: bool) -> EndedBy:
    if timed_out:
        return "timeout"
    if not turns or turns[-1].stop_reason in ("error", "aborted") or turns[-1].tool_calls:
        return "generation_error"
    return "truncated" if turns[-1].stop_reason == "length" else "reply"


def _usage(path: Path | None) -> tuple[int, int, str | None]:
    """Prompt and completion tokens pi recorded, and the last error message pi wrote, from the raw session file."""
    prompt = completion = 0
    error = None
    if path is None:
        return 0, 0, None
    for line in path.read_text("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the reader already counted it as a warning
        message = entry.get("message") if isinstance(entry, dict) else None
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
        prompt += _int(usage.get("input")) + _int(usage.get("cacheRead"))
        completion += _int(usage.get("output"))
        error = message.get("errorMessage") or error
    return prompt, completion, error


def _int(value) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _error(run, ended: EndedBy, pi_error: str | None) -> str | None:
    """What went wrong, in one line or a short tail: pi's own error, its exit status, unreadable session data."""
    problems = []
    if ended == "generation_error":
        detail = pi_error or (run.stderr.strip().splitlines() or ["no session written"])[-1]
        problems.append(f"pi exited {run.exit_code}: {detail[:500]}")
    if ended == "timeout":
        problems.append(f"pi stopped at the episode time limit ({run.seconds:.0f} s)")
    problems += list(run.read_errors)
    if run.warnings:
        problems.append(f"{len(run.warnings)} warning(s) reading pi's session: {run.warnings[0].message}")
    return "; ".join(problems) or None
