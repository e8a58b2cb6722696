"""Tool definitions: pi's built-ins, inferred schemas, trace-carried tools, user overrides."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tracetune.conversation.types import Episode, Message, Session, ToolCall, ToolSpec
from tracetune.errors import TracetuneError
from tracetune.prepare.tool_infer import conforms, infer_parameters
from tracetune.prepare.tools import ToolCatalog, load_builtin

PI_TOOLS = (Path(__file__).resolve().parents[1] / ".cache" / "pi-oracle" / "node_modules" / "@mariozechner"
            / "pi-coding-agent" / "dist" / "core" / "tools")


def session(sid, calls, agent="pi", tools=()):
    msgs = [Message(role="user", content="go")]
    for i, (name, args) in enumerate(calls):
        msgs.append(Message(role="assistant", tool_calls=(ToolCall(id=f"{sid}-{i}", name=name, arguments=args),),
                            trainable=True))
        msgs.append(Message(role="tool", tool_call_id=f"{sid}-{i}", name=name, content="ok"))
    return Session(id=sid, source=sid, agent=agent, episodes=(Episode(id=sid, messages=tuple(msgs)),),
                   tools=tuple(tools))


def by_name(specs):
    return {s.name: s for s in specs}


def test_pi_builtins_cover_the_seven_tools_with_their_parameters():
    builtin = load_builtin("pi")
    assert set(builtin.tools) == {"read", "bash", "edit", "write", "grep", "find", "ls"}
    assert builtin.defaults == ("read", "bash", "edit", "write")
    read = builtin.tools["read"].parameters
    assert read["required"] == ["path"] and read["properties"]["offset"]["type"] == "number"
    grep = builtin.tools["grep"].parameters["properties"]
    assert grep["ignoreCase"]["type"] == "boolean" and grep["literal"]["type"] == "boolean"


@pytest.mark.skipif(not PI_TOOLS.is_dir(), reason="pi's npm package is not installed here")
def test_pi_builtins_match_the_published_typebox_schemas():
    """Names, types and optionality agree with pi's own schema source."""
    type_of = {"String": "string", "Number": "number", "Boolean": "boolean", "Array": "array"}
    for name, spec in load_builtin("pi").tools.items():
        source = (PI_TOOLS / f"{name}.js").read_text()
        block = re.search(r"const \w*?" + ("edit" if name == "edit" else name) + r"Schema = Type\.Object\(\{(.*?)\n\}", source, re.S)
        assert block, name
        fields = re.findall(r"^\s{4}(\w+): (Type\.Optional\()?Type\.(\w+)", block.group(1), re.M)
        props = spec.parameters["properties"]
        assert {f for f, _, _ in fields} == set(props), name
        for field, optional, typ in fields:
            assert props[field]["type"] == type_of[typ], (name, field)
            assert (field in spec.parameters.get("required", [])) == (not optional), (name, field)


def test_catalog_uses_builtins_defaults_and_called_extras():
    s = session("a", [("read", {"path": "a.py"}), ("grep", {"pattern": "x", "ignoreCase": True}),
                      ("deploy", {"target": "prod", "dry_run": False})])
    catalog = ToolCatalog.from_sessions([s])
    tools = by_name(catalog.for_session(s))
    assert list(tools) == ["read", "bash", "edit", "write", "grep", "deploy"]
    assert tools["grep"] == load_builtin("pi").tools["grep"]
    assert tools["deploy"].parameters == {
        "type": "object",
        "properties": {"target": {"type": "string"}, "dry_run": {"type": "boolean"}},
        "required": ["target", "dry_run"],
    }
    assert catalog.to_dict()["agents"]["pi"]["origin"]["deploy"] == "inferred"


def test_inferred_required_and_union_types_across_calls():
    params = infer_parameters([{"q": "a", "n": 1}, {"q": "b", "n": 2.5}, {"q": 3, "opts": {"deep": True}}])
    assert params["required"] == ["q"]
    assert params["properties"]["q"]["type"] == ["integer", "string"]
    assert params["properties"]["n"]["type"] == "number"
    assert params["properties"]["opts"]["properties"]["deep"]["type"] == "boolean"
    items = infer_parameters([{"xs": [1, "a"]}, {"xs": []}])["properties"]["xs"]
    assert items["type"] == "array" and items["items"]["type"] == ["integer", "string"]


def test_every_observed_call_conforms_to_its_catalog_schema():
    s = session("a", [("edit", {"path": "a", "oldText": "x", "newText": "y"}), ("read", {"path": "b", "limit": 5}),
                      ("mcp_search", {"query": "q"}), ("mcp_search", {"query": "r", "k": 3})])
    tools = by_name(ToolCatalog.from_sessions([s]).for_session(s))
    for m in s.episodes[0].messages:
        for c in m.tool_calls:
            assert conforms(c.arguments, tools[c.name].parameters), c


def test_old_style_edit_calls_get_a_schema_that_fits_them():
    s = session("a", [("edit", {"path": "a", "oldText": "x", "newText": "y"})])
    catalog = ToolCatalog.from_sessions([s])
    edit = by_name(catalog.for_session(s))["edit"]
    assert set(edit.parameters["properties"]) == {"path", "oldText", "newText"}
    assert edit.description == load_builtin("pi").tools["edit"].description
    assert edit.parameters["properties"]["path"]["description"]
    d = catalog.to_dict()["agents"]["pi"]
    assert d["origin"]["edit"] == "builtin-mismatch" and d["mismatched_calls"]["edit"] == 1


def test_trace_carried_tools_win_and_other_agents_are_kept_apart():
    own = (ToolSpec(name="Read", description="read it"),)
    claude = session("c", [("Read", {"file_path": "x"})], agent="claude-code", tools=own)
    other = session("m", [("lookup", {"id": 1})], agent="messages")
    pi = session("p", [("bash", {"command": "ls"})])
    catalog = ToolCatalog.from_sessions([claude, other, pi])
    assert catalog.for_session(claude) == own
    assert [t.name for t in catalog.for_session(other)] == ["lookup"]
    assert "lookup" not in by_name(catalog.for_session(pi))
    d = catalog.to_dict()
    assert d["sessions_with_own_tools"] == 1 and set(d["agents"]) == {"messages", "pi"}
    json.dumps(d)


def test_user_tools_file_overrides_by_name(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps({"tools": [{"type": "function", "function": {
        "name": "bash", "description": "my bash", "parameters": {"type": "object", "properties": {}}}}],
        "agents": {"pi": {"tools": [{"name": "extra", "description": "x"}]}}}))
    s = session("a", [("bash", {"command": "ls"})])
    tools = by_name(ToolCatalog.from_sessions([s], tools_file=path).for_session(s))
    assert tools["bash"].description == "my bash" and "extra" in tools


def test_bad_tools_file_is_a_user_error(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text("{not json")
    with pytest.raises(TracetuneError):
        ToolCatalog.from_sessions([], tools_file=path)
    path.write_text(json.dumps({"tools": [{"description": "no name"}]}))
    with pytest.raises(TracetuneError):
        ToolCatalog.from_sessions([], tools_file=path)
    path.write_text(json.dumps({"tools": [{"name": "x", "parameters": ["path"]}]}))
    with pytest.raises(TracetuneError, match="JSON schema object"):
        ToolCatalog.from_sessions([], tools_file=path)


def test_moved_properties_keep_their_descriptions():
    s = session("a", [("edit", {"path": "a", "oldText": "x", "newText": "y"})])
    props = by_name(ToolCatalog.from_sessions([s]).for_session(s))["edit"].parameters["properties"]
    declared = load_builtin("pi").tools["edit"].parameters["properties"]["edits"]["items"]["properties"]
    assert props["oldText"]["description"] == declared["oldText"]["description"]


def test_each_session_is_offered_only_the_tools_it_had():
    """Defaults plus its own calls: another session's extension tools cost this one no tokens."""
    with_ext = session("a", [("bash", {"command": "ls"}), ("deploy", {"target": "prod"}), ("grep", {"pattern": "x"})])
    plain = session("b", [("read", {"path": "a.py"})])
    catalog = ToolCatalog.from_sessions([with_ext, plain])
    assert [t.name for t in catalog.for_session(plain)] == ["read", "bash", "edit", "write"]
    assert [t.name for t in catalog.for_session(with_ext)] == ["read", "bash", "edit", "write", "grep", "deploy"]
    assert {t["function"]["name"] for t in catalog.to_dict()["agents"]["pi"]["tools"]} >= {"deploy", "grep"}
