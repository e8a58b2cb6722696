"""What ``prepare``'s workers run (``workers.Workers.run``): one chunk's secret detection, one file's survey, one
Episode's render.

Each task is a pure function of its input and of the ``workers.WorkerState``
every worker got at start; its result comes back to the calling process, which
does everything that depends on order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracetune.prepare.conversations import ConversationCounts
from tracetune.prepare.workers import WorkerState

#: Characters of text per detection task (a big file is spread over the workers).
DETECT_CHUNK = 400_000


def chunks(texts: list[str], size: int = DETECT_CHUNK) -> list[list[str]]:
    """``texts`` cut into runs of about ``size`` characters (at least one run, maybe empty)."""
    out: list[list[str]] = [[]]
    total = 0
    for text in texts:
        if total >= size:
            out.append([])
            total = 0
        out[-1].append(text)
        total += len(text)
    return out


def detect(state: WorkerState, texts: list[str]) -> list:
    """Secret spans of each text (``StreamRedactor.detect``) with the run's redaction options."""
    if state.redactor is None:
        from tracetune.prepare.redact_stream import StreamRedactor

        state.redactor = StreamRedactor(state.config.redaction)
    return state.redactor.detect(texts)


@dataclass(frozen=True)
class SurveyTask:
    raw: Path  # the sessions as read, spilled by the learn pass (removed here)
    spill: Path  # where the redacted sessions go
    learned: Path  # the StreamRedactor after the learn pass, pickled


@dataclass
class SurveyOutput:
    log: Any  # redact_stream.FileLog
    summaries: list = field(default_factory=list)  # corpus.SessionSummary of each session kept


def survey_file(state: WorkerState, task: SurveyTask) -> SurveyOutput:
    """Redact one file's spilled sessions with what the whole corpus taught, spill them, and summarise each."""
    from tracetune.prepare.corpus import SessionSummary, load_spill, write_spill

    sessions, log = state.learned_redactor(task.learned).rewrite_file(load_spill(task.raw))
    task.raw.unlink()
    out = SurveyOutput(log)
    if sessions:
        write_spill(task.spill, sessions)
        out.summaries = [SessionSummary.of(session, task.spill, index) for index, session in enumerate(sessions)]
    return out


@dataclass(frozen=True)
class EpisodeTask:
    spill: Path
    session: int
    episode: int
    tools: tuple
    system: str | None
    family: str
    split: str


@dataclass
class EpisodeOutput:
    """One Episode's rows, record and figures, ready to append (see ``stream.render_pass``)."""

    counts: ConversationCounts
    targets: int = 0
    figures: Any = None  # stats.EpisodeFigures, None without targets
    tool_names: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)  # (ids bytes, mask, window, tokens, supervised, messages JSON)
    episode_id: str = ""
    tools_json: str = "[]"
    record: str = ""


def render_episode(state: WorkerState, task: EpisodeTask) -> EpisodeOutput:
    """Convert, render, window and serialise one Episode of a spilled session."""
    from tracetune.conversation.wire import episode_to_wire
    from tracetune.prepare.conversations import convert_episode, to_conversation
    from tracetune.prepare.stats import EpisodeFigures
    from tracetune.prepare.windows import examples_for

    config = state.config
    state.learned.clear()  # the survey pass is over: its redactor is not needed again
    session = state.sessions(task.spill)[task.session]
    episode = session.episodes[task.episode]
    out = EpisodeOutput(ConversationCounts())
    converted = convert_episode(episode, config, out.counts)
    if not converted.target_indices:
        return out
    out.targets = len(converted.target_indices)
    conv = to_conversation(session, converted, task.tools, task.system or session.system_prompt)
    result = examples_for(state.tokenizer, conv, config)
    out.figures = EpisodeFigures.of(result)
    out.tool_names = [c["function"]["name"] for ex in result.examples for t in ex.targets
                      for c in conv.messages[t].get("tool_calls") or []]
    out.episode_id = episode.id
    out.tools_json = json.dumps(list(conv.tools), ensure_ascii=False)
    dumped: dict[int, tuple[dict, str]] = {}  # id(message) -> (message, its JSON): windows repeat messages
    for ex in result.examples:
        r = ex.rendered
        out.rows.append((bytes(memoryview(_int32(r.ids))), bytes(r.mask), ex.window, r.num_tokens, r.num_supervised,
                         _json_list(ex.messages, dumped)))
    record = episode_to_wire(converted, task.tools, system_prompt=conv.system, include_reasoning=config.include_reasoning)
    record["tracetune"].update({"session_id": session.id, "family_id": task.family, "agent": session.agent})
    out.record = json.dumps(record, ensure_ascii=False)
    return out


def _json_list(items, dumped: dict[int, tuple[Any, str]]) -> str:
    """``json.dumps(list(items), ensure_ascii=False)``, each item dumped once per ``dumped`` (kept alive there)."""
    parts = []
    for item in items:
        entry = dumped.get(id(item))
        if entry is None or entry[0] is not item:
            entry = dumped[id(item)] = (item, json.dumps(item, ensure_ascii=False))
        parts.append(entry[1])
    return "[" + ", ".join(parts) + "]"


def _int32(ids) -> Any:
    from array import array

    return array("i", ids)
