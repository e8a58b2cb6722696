"""Codex CLI rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``).

Each line is ``{"timestamp", "type", "payload"}``. What the model saw is the
sequence of ``response_item`` payloads, in file order; everything else is
metadata or a UI echo.

Semantics (what this reader decides):

- ``session_meta``: id, cwd, ``cli_version`` (-> ``format_version``),
  ``model_provider``, ``forked_from_id`` (-> ``parent_ref``) and
  ``base_instructions`` (the teacher's system prompt -> ``system_prompt``).
  Later ``session_meta`` lines (a resumed session) are counted as ignored.
- ``turn_context``: its ``model`` is the teacher of the following assistant
  turns, written ``provider/model`` (``model_provider`` prefixed unless the id
  already holds a ``/``, as OpenRouter ids do).
- ``response_item`` ``message``: ``user`` -> user; ``developer`` / ``system``
  -> a user message with ``origin="developer"`` (context only; the system
  prompt stays the first message, so chat templates that allow a single
  leading system message still render); ``assistant`` -> assistant text.
- **Outputs stay with their calls.** Codex may record a developer / system
  message (an approval, a model switch, new permissions) between a call and
  its output. Each output is kept right after its call's assistant message
  (with the call's other outputs), and the developer messages follow them in
  their recorded order, as a tool-calling chat template requires; a call
  still open when a user message or a new response comes is unanswered.
- **One model response = one assistant Message.** Codex records each output
  item of a response on its own line, in completion order (a function call
  may come before the reasoning and text of the same response). A maximal
  run of output items (``reasoning``, assistant ``message``,
  ``function_call``, ``custom_tool_call``, ``local_shell_call``) with no input
  item (user/developer message, tool output) between them is one response:
  texts joined, reasoning joined, calls in file order. ``event_msg`` lines do
  not break a run.
- ``function_call``: ``arguments`` is a JSON string and is parsed; one that
  is not a JSON object is kept as ``{"input": text}`` + ``arguments_raw`` with
  a ``bad_arguments`` warning. ``custom_tool_call`` (free-text tools such as
  ``apply_patch``) -> ``{"input": text}`` + ``arguments_raw`` (not a warning:
  that is the tool's shape). ``*_output`` -> ``tool`` messages; ``is_error``
  when the output says ``success: false``.
- ``reasoning``: the summary texts become ``reasoning`` of the response
  (the raw ``content`` texts where there is no summary, as open models
  write); ``encrypted_content`` is dropped. A response with reasoning only is
  kept as context (reason ``empty``).
- ``compacted``: the current Episode ends; the next starts (start
  ``compaction``) from ``replacement_history`` when present (its assistant
  turns are ``seen``), else from the summary ``message`` as a user message
  (``origin="compactionSummary"``).
- ``event_msg`` lines echo items already recorded and are never read as
  messages; they are counted in ``stats.ignored`` by subtype. One changes
  the history: ``thread_rolled_back`` (undo of the last ``num_turns`` user
  turns) ends the Episode, and the next (start ``branch``) continues from the
  history before those turns.
- Older rollouts (a header line without ``type``, bare response items,
  ``record_type: state`` lines) are read the same way.

The rollout does not record tool definitions: ``prepare`` uses Codex's own
built-in tool schemas (``prepare/tool_schemas/codex.json``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tracetune.conversation.types import Episode, Message, Session, SessionStats
from tracetune.readers.base import Line, WarningSink, iter_json_lines, open_text
from tracetune.readers.codex_items import ItemConverter, Response
from tracetune.readers.tool_pairing import dedupe_warnings, pair_tool_results

FORMAT = "codex"
AGENT = "codex"
ROLLOUT_TYPES = frozenset({"session_meta", "response_item", "event_msg", "turn_context", "compacted"})
ITEM_TYPES = frozenset({"message", "reasoning", "function_call", "function_call_output", "custom_tool_call",
                        "custom_tool_call_output", "local_shell_call"})


def sniff(first_objects: list[dict[str, Any]]) -> bool:
    """Whether the first objects look like a Codex rollout, in the current layout or an older one."""
    for obj in first_objects:
        if _str(obj.get("type")) in ROLLOUT_TYPES and isinstance(obj.get("payload"), dict):
            return True
        if obj.get("record_type") == "state":
            return True
    head = first_objects[0] if first_objects else {}
    return "type" not in head and "id" in head and "timestamp" in head and "instructions" in head


def read(path: Path) -> list[Session]:
    """The one ``Session`` of the Codex rollout at ``path``, its problems as warnings."""
    path = Path(path)
    sink = WarningSink(path)
    lines = list(iter_json_lines(open_text(path), sink))
    if not lines:
        sink.warn("empty_file", "file holds no entries")
    state = _Rollout(sink, default_id=path.stem)
    for i, ln in enumerate(lines):
        state.line(ln, first=i == 0)
    state.close_episode()
    return [state.session(path, len(lines))]


class _Rollout:
    def __init__(self, sink: WarningSink, default_id: str):
        self.sink, self.default_id = sink, default_id
        self.ignored: dict[str, int] = {}
        self.meta: dict[str, Any] = {}
        self.model: str | None = None
        self.items = ItemConverter(sink)
        self.episodes: list[Episode] = []
        self.current: list[Message] = []
        self.start = "root"
        self.response: Response | None = None
        self.compactions = 0
        self.assistant_entries = 0

    # -- dispatch -----------------------------------------------------------
    def line(self, ln: Line, first: bool) -> None:
        obj = ln.value
        kind, payload = _str(obj.get("type")), obj.get("payload")
        if kind in ROLLOUT_TYPES and not isinstance(payload, dict):
            self.sink.warn("bad_field", f"{kind} line without a payload object; skipped", ln.number)
        elif kind == "session_meta":
            self._session_meta(payload)
        elif kind == "turn_context":
            self._turn_context(payload)
        elif kind == "response_item":
            self.item(payload, ln.number)
        elif kind == "compacted":
            self._compacted(payload, ln.number)
        elif kind == "event_msg":
            self._event(payload)
        elif kind in ITEM_TYPES or kind in self.items.IGNORED:
            self.item(obj, ln.number)  # legacy rollout: bare response items
        elif obj.get("record_type") is not None:
            self._bump(f"record_type:{obj.get('record_type')}")
        elif first and "id" in obj and "timestamp" in obj:
            self._session_meta({**obj, "base_instructions": obj.get("instructions")})
        else:
            self.sink.warn("unknown_entry", f"unknown line type {kind!r}; skipped", ln.number)

    def _bump(self, key: str) -> None:
        self.ignored[key] = self.ignored.get(key, 0) + 1

    def _session_meta(self, payload: dict[str, Any]) -> None:
        if self.meta:
            self._bump("session_meta:repeated")
            return
        self.meta = payload

    def _turn_context(self, payload: dict[str, Any]) -> None:
        model = payload.get("model")
        if isinstance(model, str) and model:
            provider = self.meta.get("model_provider")
            self.model = model if "/" in model or not isinstance(provider, str) else f"{provider}/{model}"

    def _event(self, payload: dict[str, Any]) -> None:
        sub = str(payload.get("type"))
        if sub == "thread_rolled_back":
            self._roll_back(payload.get("num_turns"))
        else:
            self._bump(f"event_msg:{sub}")

    # -- response items -----------------------------------------------------
    def item(self, payload: dict[str, Any], line: int, copied: bool = False) -> None:
        kind = _str(payload.get("type"))
        if kind in self.items.IGNORED:
            self._bump(f"response_item:{kind}")
            return
        if kind not in ITEM_TYPES:
            self.sink.warn("unknown_entry", f"unknown response item {kind!r}; skipped", line)
            return
        if self.items.is_output(payload):
            if self.response is None:
                self.response = Response(entry_id=f"L{line}", model=self.model)
            self.assistant_entries += 0 if copied else 1
            self.items.add_output(self.response, payload, line)
            return
        self.flush_response(copied)
        message = self.items.input_message(payload, line)
        if message is not None:
            self.current.append(message)

    def flush_response(self, copied: bool = False) -> None:
        if self.response is None:
            return
        message = self.response.message()
        if copied:
            message = replace(message, trainable=False, untrainable_reason="seen")
        self.current.append(message)
        self.response = None

    # -- history changes ----------------------------------------------------
    def close_episode(self) -> None:
        self.flush_response()
        messages = pair_tool_results(outputs_with_calls(self.current), self.sink)
        fresh = any(m.role == "assistant" and m.untrainable_reason != "seen" for m in messages)
        if fresh:
            sid = self._session_id()
            self.episodes.append(Episode(id=f"{sid}:{len(self.episodes)}", messages=tuple(messages), start=self.start))

    def _compacted(self, payload: dict[str, Any], line: int) -> None:
        self.close_episode()
        self.compactions += 1
        self.current, self.start = [], "compaction"
        history = payload.get("replacement_history")
        if isinstance(history, list):
            for item in history:
                if isinstance(item, dict):
                    self.item(item, line, copied=True)
                else:
                    self.sink.warn("bad_field", "replacement_history holds a non-object; skipped", line)
            self.flush_response(copied=True)
        elif isinstance(payload.get("message"), str):
            self.current.append(Message(role="user", content=payload["message"], origin="compactionSummary",
                                        entry_id=f"L{line}"))
        else:
            self.sink.warn("compaction_target_missing", "compacted line has neither history nor summary", line)

    def _roll_back(self, num_turns: Any) -> None:
        self.flush_response()
        history = list(self.current)
        self.close_episode()
        turns = [i for i, m in enumerate(history) if m.role == "user" and m.origin is None]
        n = num_turns if isinstance(num_turns, int) and num_turns > 0 else 0
        cut = turns[-n] if 0 < n <= len(turns) else (0 if n else len(history))
        self.current = [_seen(m) for m in history[:cut]]
        self.start = "branch"

    # -- result -------------------------------------------------------------
    def _session_id(self) -> str:
        sid = self.meta.get("id")
        return sid if isinstance(sid, str) and sid else self.default_id

    def session(self, path: Path, entries: int) -> Session:
        meta = self.meta
        instructions = meta.get("base_instructions")
        if isinstance(instructions, dict):
            instructions = instructions.get("text")
        models = []
        for ep in self.episodes:
            for m in ep.messages:
                if m.role == "assistant" and m.model and m.model not in models:
                    models.append(m.model)
        return Session(
            id=self._session_id(),
            source=str(path),
            agent=AGENT,
            episodes=tuple(self.episodes),
            format_version=_str(meta.get("cli_version")),
            parent_ref=_str(meta.get("forked_from_id")),
            cwd=_str(meta.get("cwd")),
            teacher_models=tuple(models),
            system_prompt=instructions if isinstance(instructions, str) and instructions else None,
            warnings=tuple(dedupe_warnings(self.sink.items)),
            stats=SessionStats(entries=entries, assistant_entries=self.assistant_entries,
                               compactions=self.compactions, leaves=len(self.episodes),
                               images=self.items.images, ignored=dict(sorted(self.ignored.items()))),
        )


def outputs_with_calls(messages: list[Message]) -> list[Message]:
    """Move developer / system messages recorded between calls and their outputs to after those outputs.

    Only messages with ``origin="developer"`` wait, and only while the last
    assistant message has calls not yet answered; anything else (a user
    message, a new response, an output for no open call) releases them first.
    """
    out: list[Message] = []
    open_ids: set[str] = set()
    held: list[Message] = []
    for m in messages:
        if m.role == "tool" and m.tool_call_id in open_ids:
            open_ids.discard(m.tool_call_id)
            out.append(m)
            if not open_ids:
                out.extend(held)
                held = []
            continue
        if m.role == "user" and m.origin == "developer" and open_ids:
            held.append(m)
            continue
        out.extend(held)
        held = []
        if m.role != "tool":
            open_ids = {c.id for c in m.tool_calls} if m.role == "assistant" else set()
        out.append(m)
    return out + held


def _seen(m: Message) -> Message:
    return replace(m, trainable=False, untrainable_reason="seen") if m.role == "assistant" else m


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
