"""The tool definitions the student sees in its chat template, per agent.

For a session whose trace carries its tool definitions (``Session.tools``),
those are used as they are. For the others, each agent gets one catalog of
definitions, and each session is offered the part of it that session really
had: the agent's default tools, the other built-ins and extension tools that
session calls, and every tool of a user tools file. (Offering every session
the union of all sessions' tools would cost every window the definitions of
tools its agent never had: about 1,200 extra SmolLM2 tokens on the shared pi
sessions.) The catalog is built so:

1. the agent's built-in tools from ``tool_schemas/<agent>.json`` (pi: read,
   bash, edit, write, grep, find, ls, with parameter names and types taken
   from pi's published package): the file's ``default_tools`` (the tools the
   agent enables out of the box; every tool in the file when absent), plus any
   other built-in the sessions call;
2. a schema inferred from the recorded arguments for every other tool the
   agent's sessions call (extensions, MCP tools; see ``tool_infer``);
3. a built-in whose recorded calls do not fit its schema (an older version of
   the agent, e.g. pi's edit before ``edits[]``) gets the inferred schema
   instead, keeping the built-in descriptions where they still apply, so the
   definitions never contradict the calls the model is trained to make;
4. a user tools file (``from_sessions(..., tools_file=...)``) replaces the
   definition of each tool it names, and adds it to the catalog. Its shape is
   ``{"tools": [...]}`` for every agent, or ``{"agents": {"pi": {"tools":
   [...]}}}`` per agent; a tool is ``{"name", "description", "parameters"}``
   or the OpenAI ``{"type": "function", "function": {...}}`` form.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from tracetune.conversation.types import Session, ToolSpec
from tracetune.errors import TracetuneError
from tracetune.prepare.tool_infer import borrow_descriptions, conforms, infer_parameters

Origin = str  # "builtin", "inferred", "builtin-mismatch", "override"


@dataclass(frozen=True)
class BuiltinTools:
    tools: dict[str, ToolSpec]
    defaults: tuple[str, ...]


def load_builtin(agent: str) -> BuiltinTools:
    """The agent's shipped tool schemas (empty when tracetune has none for it)."""
    resource = resources.files("tracetune.prepare").joinpath("tool_schemas", f"{agent}.json")
    if not resource.is_file():
        return BuiltinTools({}, ())
    data = json.loads(resource.read_text(encoding="utf-8"))
    tools = {spec.name: spec for spec in (_spec(t, resource.name) for t in data.get("tools", []))}
    return BuiltinTools(tools, tuple(data.get("default_tools", tools)))


def _spec(raw: Any, where: str) -> ToolSpec:
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        raw = raw["function"]
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise TracetuneError(
            f"{where}: a tool definition needs a 'name' (got {str(raw)[:80]!r})",
            hint='each tool is {"name": ..., "description": ..., "parameters": {JSON schema}}',
        )
    parameters = raw.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise TracetuneError(
            f"{where}: the parameters of tool {raw['name']!r} must be a JSON schema object",
            hint='e.g. {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}',
        )
    return ToolSpec(name=raw["name"], description=raw.get("description", ""), parameters=parameters)


def load_tools_file(path: str | Path) -> dict[str | None, list[ToolSpec]]:
    """A user tools file: agent (``None`` for every agent) -> its tool definitions."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TracetuneError(f"cannot read the tools file {path}: {exc}", hint="give a JSON file") from exc
    if isinstance(data, list):
        data = {"tools": data}
    if not isinstance(data, dict) or not ("tools" in data or "agents" in data):
        raise TracetuneError(f"{path}: expected {{\"tools\": [...]}} or {{\"agents\": {{NAME: {{\"tools\": [...]}}}}}}")
    out: dict[str | None, list[ToolSpec]] = {}
    if "tools" in data:
        out[None] = [_spec(t, str(path)) for t in data["tools"]]
    for agent, entry in (data.get("agents") or {}).items():
        tools = entry.get("tools", []) if isinstance(entry, dict) else entry
        out[agent] = [_spec(t, str(path)) for t in tools]
    return out


def _calls_by_tool(sessions: Iterable[Session]) -> dict[str, list[dict[str, Any]]]:
    """tool name -> the arguments of each distinct call (a call repeated in several Episodes counts once)."""
    calls: dict[str, dict[str, dict[str, Any]]] = {}
    for session in sessions:
        for episode in session.episodes:
            for message in episode.messages:
                for call in message.tool_calls:
                    key = f"{session.id}\x00{call.id}\x00{json.dumps(call.arguments, sort_keys=True, default=str)}"
                    calls.setdefault(call.name, {})[key] = call.arguments
    return {name: list(by_key.values()) for name, by_key in calls.items()}


def called_tools(session: Session) -> set[str]:
    """Names of the tools a session's assistant turns call."""
    return {c.name for e in session.episodes for m in e.messages for c in m.tool_calls}


@dataclass
class AgentTools:
    tools: list[ToolSpec] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    mismatched_calls: dict[str, int] = field(default_factory=dict)
    defaults: tuple[str, ...] = ()

    def offered(self, called: set[str]) -> tuple[ToolSpec, ...]:
        """The definitions a session that calls ``called`` had: defaults, its own calls, user overrides."""
        keep = set(self.defaults) | called
        return tuple(t for t in self.tools if t.name in keep or self.origins.get(t.name) == "override")


def build_agent_tools(
    builtin: BuiltinTools, calls: dict[str, list[dict[str, Any]]], overrides: list[ToolSpec]
) -> AgentTools:
    """One agent's tool definitions: its default and called built-ins, schemas inferred for other called tools,
    and the ``overrides`` (each entry's origin recorded).
    """
    out = AgentTools(calls=Counter({name: len(c) for name, c in calls.items()}), defaults=builtin.defaults)
    names = [n for n in builtin.tools if n in builtin.defaults or n in calls]
    names += sorted(n for n in calls if n not in builtin.tools)
    override = {spec.name: spec for spec in overrides}
    names += [n for n in override if n not in names]
    for name in names:
        spec, origin = _tool_spec(name, builtin, calls.get(name, []), override.get(name))
        if origin == "builtin-mismatch":
            out.mismatched_calls[name] = sum(1 for a in calls[name] if not conforms(a, builtin.tools[name].parameters))
        out.tools.append(spec)
        out.origins[name] = origin
    return out


def _tool_spec(name: str, builtin: BuiltinTools, calls: list[dict[str, Any]], override: ToolSpec | None):
    if override is not None:
        return override, "override"
    declared = builtin.tools.get(name)
    if declared is None:
        return ToolSpec(name=name, description="", parameters=infer_parameters(calls)), "inferred"
    if all(conforms(args, declared.parameters) for args in calls):
        return declared, "builtin"
    parameters = borrow_descriptions(infer_parameters(calls), declared.parameters)
    return ToolSpec(name=name, description=declared.description, parameters=parameters), "builtin-mismatch"


class ToolCatalog:
    """Tool definitions per agent, and per session where the trace carries its own."""

    def __init__(self, agents: dict[str, AgentTools], overrides: dict[str | None, list[ToolSpec]] | None = None):
        self.agents = agents
        self._overrides = overrides or {}
        self.sessions_with_own_tools = 0

    @classmethod
    def from_sessions(cls, sessions: Iterable[Session], tools_file: str | Path | None = None) -> "ToolCatalog":
        """The catalog of every agent in ``sessions`` (those carrying their own tools aside), with ``tools_file``."""
        sessions = list(sessions)
        overrides = load_tools_file(tools_file) if tools_file else {}
        by_agent: dict[str, list[Session]] = {}
        for session in sessions:
            if not session.tools:
                by_agent.setdefault(session.agent, []).append(session)
        agents = {
            agent: build_agent_tools(
                load_builtin(agent), _calls_by_tool(group), overrides.get(None, []) + overrides.get(agent, [])
            )
            for agent, group in sorted(by_agent.items())
        }
        catalog = cls(agents, overrides)
        catalog.sessions_with_own_tools = sum(1 for s in sessions if s.tools)
        return catalog

    def for_session(self, session: Session) -> tuple[ToolSpec, ...]:
        """The tool definitions ``session`` is offered: its own (overridden where named), else its agent's part."""
        if session.tools:
            return self._with_overrides(session.tools, session.agent)
        if session.agent not in self.agents:
            self.agents[session.agent] = build_agent_tools(
                load_builtin(session.agent), _calls_by_tool([session]), self._agent_overrides(session.agent)
            )
        return self.agents[session.agent].offered(called_tools(session))

    def _agent_overrides(self, agent: str) -> list[ToolSpec]:
        return self._overrides.get(None, []) + self._overrides.get(agent, [])

    def _with_overrides(self, tools: tuple[ToolSpec, ...], agent: str) -> tuple[ToolSpec, ...]:
        override = {spec.name: spec for spec in self._agent_overrides(agent)}
        return tuple(override.get(t.name, t) for t in tools)

    def to_dict(self) -> dict[str, Any]:
        """Each agent's definitions (OpenAI form), origins and call counts, and the sessions with their own tools."""
        return {
            "agents": {
                agent: {
                    "tools": [spec.to_openai() for spec in entry.tools],
                    "origin": dict(entry.origins),
                    "calls": dict(sorted(entry.calls.items())),
                    "mismatched_calls": dict(entry.mismatched_calls),
                }
                for agent, entry in self.agents.items()
            },
            "sessions_with_own_tools": self.sessions_with_own_tools,
        }
