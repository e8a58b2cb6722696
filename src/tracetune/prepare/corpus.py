"""What ``prepare`` keeps of each session between its passes: small metadata, never the messages.

The family split and the tool catalog look at every session before any is
rendered. Holding the sessions for them made memory grow with the corpus, so
the metadata pass keeps, per session:

- ``SessionMeta``: id, source, agent, the tools the trace carried, the names
  of the tools it calls, where its redacted copy was spilled;
- a *family stub*: the same session with only the messages
  ``conversation.families`` looks at (the first visible messages of the first
  Episode that has some, up to the first user message and at least
  ``PREFIX_MESSAGES``), so ``assign_families`` gives the same families;
- for the tool catalog (``CatalogBuilder``), each distinct tool call's
  arguments with every string emptied and grouped by shape: schema inference
  and the conformance check only look at keys, types and nesting, so the
  catalog is the one ``ToolCatalog.from_sessions`` builds, in memory that grows
  with the distinct call shapes, not with the calls. A call repeated in
  several Episodes of a session counts once, as there, also across sessions
  that share an id (``repeated_ids``, counted by the learn pass): only for
  those are the calls' keys kept past their session.

The redacted sessions themselves wait on disk (``write_spill``, ``load_spill``:
one pickle per trace file, in the output's staging folder) for the render pass.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracetune.conversation.families import PREFIX_MESSAGES
from tracetune.conversation.types import Episode, Message, Session, ToolCall, ToolSpec
from tracetune.prepare.tools import ToolCatalog, build_agent_tools, load_builtin, load_tools_file


def write_spill(path: Path, sessions: list[Session]) -> Path:
    """One file's redacted sessions, pickled to a temporary file for the render pass."""
    with path.open("wb") as fh:
        pickle.dump(sessions, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_spill(path: Path) -> list[Session]:
    """The sessions ``write_spill`` pickled to ``path``."""
    with path.open("rb") as fh:
        return pickle.load(fh)


@dataclass(frozen=True)
class SessionMeta:
    """One session as the render pass finds it again: spill file and index, and what stats name it by."""

    id: str
    source: str
    agent: str
    spill: Path
    index: int
    episodes: int
    tools: tuple[ToolSpec, ...]
    called: frozenset[str]

    @classmethod
    def of(cls, session: Session, spill: Path, index: int) -> "SessionMeta":
        """The meta of ``session``, found again at position ``index`` of the spill file ``spill``."""
        called = frozenset(c.name for e in session.episodes for m in e.messages for c in m.tool_calls)
        return cls(session.id, session.source, session.agent, spill, index, len(session.episodes), session.tools, called)

    def tool_stub(self) -> Session:
        """A session ``ToolCatalog.for_session`` answers for exactly as for the real one."""
        calls = tuple(ToolCall(f"c{n}", name, {}) for n, name in enumerate(sorted(self.called)))
        episode = Episode("tools", (Message("assistant", "", calls),))
        return Session(self.id, self.source, self.agent, (episode,), tools=self.tools)


def family_stub(session: Session) -> Session:
    """``session`` with only what ``families.assign_families`` reads (id, source, parent, first messages)."""
    kept: tuple[Message, ...] = ()
    for episode in session.episodes:
        visible = [m for m in episode.messages if m.role != "system"]
        if visible:
            first_user = next((i for i, m in enumerate(visible) if m.role == "user"), 0)
            kept = tuple(visible[: max(PREFIX_MESSAGES, first_user + 1)])
            break
    episodes = (Episode("first", kept),) if kept else ()
    return Session(session.id, session.source, session.agent, episodes, parent_ref=session.parent_ref)


def skeleton(value: Any) -> Any:
    """``value`` with every string emptied and every number zeroed (keys, types and nesting kept)."""
    if isinstance(value, dict):
        return {k: skeleton(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [skeleton(v) for v in value]
    if isinstance(value, str):
        return ""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    return ""


Call = tuple[str, bytes, str]  # tool name, hash of (call id, arguments), arguments' skeleton as JSON


def calls_of(session: Session) -> tuple[Call, ...] | None:
    """Each distinct tool call of ``session`` once, in order, as ``CatalogBuilder.add_calls`` takes them; None when
    the session carries its own tools. A call is its id and arguments (hashed: 16 bytes however long they are)."""
    if session.tools:
        return None
    out: dict[tuple[str, bytes], Call] = {}
    for episode in session.episodes:
        for message in episode.messages:
            for call in message.tool_calls:
                text = f"{call.id}\x00{json.dumps(call.arguments, sort_keys=True, default=str)}"
                key = (call.name, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest())
                if key not in out:
                    out[key] = (call.name, key[1], json.dumps(skeleton(call.arguments)))
    return tuple(out.values())


@dataclass
class CatalogBuilder:
    """The inputs of ``ToolCatalog.from_sessions``, gathered one session at a time."""

    shapes: dict[str, dict[str, dict[str, list]]] = field(default_factory=dict)  # agent -> tool -> shape -> [args, n]
    own_tools: int = 0
    repeated_ids: frozenset[str] = frozenset()  # session ids read more than once
    _seen_by_id: dict[str, set] = field(default_factory=dict)

    def add(self, session: Session) -> None:
        """Count a session carrying its own tools, else record the argument shape of each distinct call it makes."""
        self.add_calls(session.id, session.agent, calls_of(session))

    def add_calls(self, session_id: str, agent: str, calls: "tuple[Call, ...] | None") -> None:
        """``add`` for a session's ``calls_of`` (None: it carries its own tools)."""
        if calls is None:
            self.own_tools += 1
            return
        tools = self.shapes.setdefault(agent, {})
        seen: set[tuple[str, bytes]] = self._seen_by_id.setdefault(session_id, set()) if session_id in self.repeated_ids else set()
        for name, key, shape in calls:
            if (name, key) in seen:
                continue
            seen.add((name, key))
            entry = tools.setdefault(name, {}).setdefault(shape, [json.loads(shape), 0])
            entry[1] += 1

    def build(self, tools_file: str | Path | None = None) -> ToolCatalog:
        """The ``ToolCatalog`` of the sessions added, with the definitions of ``tools_file`` (if given) applied."""
        overrides = load_tools_file(tools_file) if tools_file else {}
        agents = {}
        for agent, tools in sorted(self.shapes.items()):
            calls = {name: [shape for shape, n in by_shape.values() for _ in range(n)] for name, by_shape in tools.items()}
            agents[agent] = build_agent_tools(load_builtin(agent), calls, overrides.get(None, []) + overrides.get(agent, []))
        catalog = ToolCatalog(agents, overrides)
        catalog.sessions_with_own_tools = self.own_tools
        return catalog


@dataclass
class Survey:
    """Everything the metadata pass keeps (see the module docstring)."""

    sessions: list[SessionMeta] = field(default_factory=list)
    stubs: list[Session] = field(default_factory=list)
    catalog: CatalogBuilder = field(default_factory=CatalogBuilder)
    warnings: Counter = field(default_factory=Counter)
    has_tool_calls: bool = False

    def add(self, session: Session, spill: Path, index: int) -> None:
        """Keep what later passes need of ``session`` (meta, family stub, tool shapes, warnings)."""
        self.add_summary(SessionSummary.of(session, spill, index))

    def add_summary(self, summary: "SessionSummary") -> None:
        """``add`` for a session summarised (by a worker process)."""
        self.sessions.append(summary.meta)
        self.stubs.append(summary.stub)
        self.catalog.add_calls(summary.meta.id, summary.meta.agent, summary.calls)
        self.warnings.update(summary.warnings)
        self.has_tool_calls = self.has_tool_calls or summary.has_tool_calls


@dataclass(frozen=True)
class SessionSummary:
    """What ``Survey`` keeps of one redacted session, small enough to come back from a worker process."""

    meta: SessionMeta
    stub: Session
    calls: tuple[Call, ...] | None
    warnings: tuple[str, ...]
    has_tool_calls: bool

    @classmethod
    def of(cls, session: Session, spill: Path, index: int) -> "SessionSummary":
        """The summary of ``session``, spilled at position ``index`` of ``spill``."""
        return cls(SessionMeta.of(session, spill, index), family_stub(session), calls_of(session),
                   tuple(w.kind for w in session.warnings),
                   any(m.tool_calls for e in session.episodes for m in e.messages))
