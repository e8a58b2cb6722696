"""Scorers on hand-made cases: a student output against the teacher's next message."""

from __future__ import annotations

import pytest

from tracetune.conversation.types import Message, ToolCall, ToolSpec
from tracetune.eval.parsing import parse_output
from tracetune.eval.schema import validate
from tracetune.eval.scorers import action_type, argument_agreement, score_turn, text_similarity

TOOLS = {
    "read": ToolSpec("read", parameters={"type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}}, "required": ["path"]}),
    "bash": ToolSpec("bash", parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"], "additionalProperties": False}),
    "edit": ToolSpec("edit", parameters={"type": "object", "properties": {
        "path": {"type": "string"},
        "edits": {"type": "array", "items": {"type": "object", "properties": {"oldText": {"type": "string"}, "newText": {"type": "string"}}, "required": ["oldText", "newText"]}}},
        "required": ["path", "edits"]}),
}


def assistant(text="", *calls):
    return Message(role="assistant", content=text, tool_calls=tuple(ToolCall(f"c{i}", n, a) for i, (n, a) in enumerate(calls)))


def student(raw):
    res = parse_output(raw)
    return res.message, res.error


def score(teacher, raw):
    msg, err = student(raw)
    return score_turn(teacher, msg, TOOLS, err)


TEACHER_READ = assistant("", ("read", {"path": "src/app.py"}))


def test_valid_matching_call_scores_full_marks():
    s = score(TEACHER_READ, '<tool_call>{"name": "read", "arguments": {"path": "./src/app.py"}}</tool_call>')
    assert s.parsed and s.action_match and s.continue_match
    assert s.known_tool and s.schema_valid and s.valid_call
    assert s.tool_match and s.path_match
    assert s.args_similarity == 1.0
    assert s.reply_similarity is None


def test_malformed_json_fails_everything_that_needs_a_parse():
    s = score(TEACHER_READ, '<tool_call>{"name": "read", "arguments": {"path": "src/app.py"</tool_call>')
    assert not s.parsed and s.parse_error == "invalid_json"
    assert s.action is None and not s.action_match
    assert s.tool_match is False  # the teacher called a tool, the student produced nothing usable
    assert s.valid_call is None and s.args_similarity is None


def test_unknown_tool():
    s = score(TEACHER_READ, '<tool_call>{"name": "open_file", "arguments": {"path": "src/app.py"}}</tool_call>')
    assert s.parsed and s.action_match  # still a tool call
    assert s.known_tool is False and s.valid_call is False
    assert s.schema_valid is None  # no known tool to validate against
    assert s.tool_match is False and s.args_similarity is None
    assert any("unknown tool" in e for e in s.schema_errors)


@pytest.mark.parametrize(
    "args, problem",
    [
        ({}, "missing required property 'path'"),
        ({"path": 3}, "expected string"),
        ({"path": "a", "limit": 0}, "below the minimum"),
        ({"path": "a", "limit": "10"}, "expected integer"),
    ],
)
def test_schema_violation(args, problem):
    import json

    s = score(TEACHER_READ, f'<tool_call>{{"name": "read", "arguments": {json.dumps(args)}}}</tool_call>')
    assert s.known_tool and s.schema_valid is False and s.valid_call is False
    assert any(problem in e for e in s.schema_errors), s.schema_errors
    assert s.tool_match  # right tool, bad arguments


def test_schema_violation_nested_and_extra_keys():
    assert validate({"path": "a", "edits": [{"oldText": "x"}]}, TOOLS["edit"].parameters) == ["$.edits[0]: missing required property 'newText'"]
    assert validate({"command": "ls", "cwd": "/"}, TOOLS["bash"].parameters) == ["$: unexpected property 'cwd'"]
    assert validate(True, {"type": "integer"}) == ["$: expected integer, got boolean"]
    assert validate("x", {"anyOf": [{"type": "integer"}, {"type": "string"}]}) == []


def test_wrong_tool():
    s = score(TEACHER_READ, '<tool_call>{"name": "bash", "arguments": {"command": "cat src/app.py"}}</tool_call>')
    assert s.valid_call and s.action_match
    assert s.tool_match is False and s.tool == "bash" and s.teacher_tool == "read"
    assert s.args_similarity is None and s.path_match is None


def test_right_tool_wrong_path():
    s = score(TEACHER_READ, '<tool_call>{"name": "read", "arguments": {"path": "src/app2.py"}}</tool_call>')
    assert s.tool_match and s.valid_call
    assert s.path_match is False
    assert s.args_similarity == 0.0  # the only key is a path, and paths are exact


def test_commands_and_edit_text_score_a_similarity():
    teacher = assistant("", ("bash", {"command": "pytest tests/test_a.py -q"}))
    close = score(teacher, '<tool_call>{"name": "bash", "arguments": {"command": "pytest  tests/test_a.py"}}</tool_call>')
    far = score(teacher, '<tool_call>{"name": "bash", "arguments": {"command": "rm -rf build"}}</tool_call>')
    assert 0.8 < close.args_similarity < 1.0
    assert far.args_similarity < 0.5 < close.args_similarity
    assert close.path_match is None  # no path argument


def test_argument_agreement_counts_missing_and_extra_keys():
    sim, path_ok = argument_agreement({"path": "a.py", "content": "x = 1\n"}, {"path": "a.py", "content": "x = 1", "mode": "w"})
    assert path_ok is True
    assert sim == pytest.approx((1.0 + 1.0 + 0.0) / 3)


def test_stop_vs_continue():
    teacher_done = assistant("The bug is fixed and the tests pass.")
    s = score(teacher_done, '<tool_call>{"name": "bash", "arguments": {"command": "pytest"}}</tool_call>')
    assert s.teacher_action == "reply" and s.action == "tool_call"
    assert not s.action_match and not s.continue_match
    assert s.reply_similarity < 0.2  # the student said nothing
    s2 = score(TEACHER_READ, "I am done.")
    assert s2.action == "reply" and not s2.action_match and not s2.continue_match and s2.tool_match is False


def test_empty_output_is_stop_and_differs_from_reply():
    assert action_type(assistant("")) == "stop"
    s = score(assistant("Done."), "")
    assert s.action == "stop" and not s.action_match
    assert s.continue_match  # neither continues the loop


def test_reply_similarity():
    s = score(assistant("All tests pass now."), "All tests pass now!")
    assert s.action_match and 0.9 < s.reply_similarity < 1.0
    assert text_similarity("a  b\n", "a b") == 1.0
