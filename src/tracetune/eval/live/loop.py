"""Run a model as a coding agent on one task: generate, execute its tool calls, feed results back.

An episode stops when the model answers without a tool call (it ended by
itself; ``truncated`` instead when that answer was cut at ``max_new_tokens``),
at ``max_turns``, or when its output does not parse (the raw text is
recorded as an assistant turn with ``stopReason: "error"`` and the parse
failure kind). Then the task's check command decides success. Every episode
is written as a pi session file (``record.py``). Tool calls run in the
config's sandbox mode (``LiveConfig.sandbox_mode``); in ``workspace-tools`` mode
bash is still offered (the model was trained with it) and answers with an error.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracetune.conversation.types import Message, ToolCall
from tracetune.conversation.wire import message_to_wire
from tracetune.eval.backends.base import Backend, Generation, GenerationRequest
from tracetune.eval.live.config import LiveConfig
from tracetune.eval.live.record import PiSessionWriter, Usage
from tracetune.eval.live.results import EndedBy, EpisodeResult
from tracetune.eval.live.specs import argument_problem, normalize_arguments, offered_tools, spec_for
from tracetune.eval.live.tasks import Task
from tracetune.eval.live.tools import WorkspaceTools
from tracetune.eval.sandbox import SandboxMode
from tracetune.util.workspace import fixed_workspace

DEFAULT_SYSTEM_PROMPT = (
    "You are a coding agent working in a project directory. Use the tools to look at files "
    "(read, ls, find, grep), change them (edit, write) and run commands (bash). Work step by step, "
    "check your change by running the tests, and reply briefly without a tool call when you are done."
)


def is_valid_call(call: ToolCall) -> bool:
    """Whether ``call`` names a known tool with arguments that parsed and fit its schema."""
    spec = spec_for(call.name)
    return spec is not None and call.arguments_raw is None and argument_problem(spec, normalize_arguments(call.name, call.arguments)) is None


class _Episode:
    """The running state of one episode: wire messages, the session writer, counters."""

    def __init__(self, task: Task, backend: Backend, config: LiveConfig, workspace: Path, mode: SandboxMode):
        self.task, self.backend, self.config = task, backend, config
        self.tools = WorkspaceTools(workspace, config.limits(), mode=mode)
        self.writer = PiSessionWriter(str(workspace), provider="tracetune", model=backend.name)
        self.wire: list[dict[str, Any]] = [{"role": "system", "content": config.system_prompt or DEFAULT_SYSTEM_PROMPT}]
        self.tool_defs = [t.to_openai() for t in offered_tools(config.tools_file)]
        self.turns = self.calls = self.valid = self.prompt_tokens = self.completion_tokens = 0
        self.parse_errors: list[str] = []
        self.error: str | None = None
        self._call_ids: set[str] = set()

    def start(self) -> None:
        self.writer.model_change()
        self.writer.thinking_level_change("off")
        self.writer.user(self.task.instruction)
        self.wire.append({"role": "user", "content": self.task.instruction})

    def step(self) -> EndedBy | None:
        request = GenerationRequest(messages=list(self.wire), tools=self.tool_defs, max_new_tokens=self.config.max_new_tokens,
                                    temperature=self.config.temperature, seed=self.config.seed + self.turns)
        try:
            gen = self.backend.generate([request])[0]
        except (RuntimeError, ValueError, IndexError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return "generation_error"
        self.turns += 1
        self.prompt_tokens += gen.prompt_tokens
        self.completion_tokens += gen.completion_tokens
        usage = Usage(gen.prompt_tokens, gen.completion_tokens)
        if gen.message is None:
            kind = gen.parse_error or "unparsed"
            self.parse_errors.append(kind)
            self.writer.assistant(Message(role="assistant", content=gen.raw), usage, "error", f"tool-call parse failure: {kind}")
            return "parse_error"
        message = self._with_call_ids(gen)
        self.writer.assistant(message, usage, None if gen.finished else "length")
        self.wire.append(message_to_wire(message, include_meta=False))
        if not message.tool_calls:
            return "reply" if gen.finished else "truncated"
        for call in message.tool_calls:
            self._run_call(call)
        return None

    def _with_call_ids(self, gen: Generation) -> Message:
        """The parsed message with a tool-call id that is unique in the episode on every call."""
        assert gen.message is not None
        calls = []
        for call in gen.message.tool_calls:
            cid = call.id if call.id and call.id not in self._call_ids else self.writer.tool_call_id()
            self._call_ids.add(cid)
            calls.append(replace(call, id=cid))
        return replace(gen.message, role="assistant", tool_calls=tuple(calls))

    def _run_call(self, call: ToolCall) -> None:
        self.calls += 1
        valid = is_valid_call(call)
        self.valid += valid
        if call.arguments_raw is not None:
            text, is_error = f"Tool call arguments are not a JSON object: {call.arguments_raw[:200]}", True
        else:
            result = self.tools.execute(call.name, call.arguments)
            text, is_error = result.text, result.is_error
        self.writer.tool_result(call.id, call.name, text, is_error)
        tool_msg = Message(role="tool", content=text, tool_call_id=call.id, name=call.name, is_error=is_error)
        self.wire.append(message_to_wire(tool_msg, include_meta=False))


def run_episode(task: Task, backend: Backend, config: LiveConfig, sessions_dir: Path,
                mode: SandboxMode | None = None) -> EpisodeResult:
    """One task, one fresh workspace (removed afterwards), one session file in ``sessions_dir``.

    ``mode``: the sandbox mode (default: the config's, resolved here).
    """
    mode = mode or config.sandbox_mode()
    started = time.monotonic()
    with fixed_workspace("live", task.id) as workspace:  # same path every run: same prompts for a seed
        task.setup(workspace)
        ep = _Episode(task, backend, config, workspace, mode)
        ep.start()
        ended: EndedBy | None = None
        while ended is None and ep.turns < config.max_turns:
            ended = ep.step()
        check = task.run_check(workspace, config.limits(), mode=mode)
        path = ep.writer.save(sessions_dir)
    return EpisodeResult(
        task_id=task.id, split=task.split, difficulty=task.difficulty, success=check.exit_code == 0,
        ended_by=ended or "max_turns", turns=ep.turns, tool_calls=ep.calls, valid_calls=ep.valid,
        prompt_tokens=ep.prompt_tokens, completion_tokens=ep.completion_tokens, session_path=str(path),
        parse_errors=tuple(ep.parse_errors), check_output=check.output[-1000:], error=ep.error,
        seconds=round(time.monotonic() - started, 3),
    )
