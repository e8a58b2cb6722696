"""The plain messages JSONL reader (tests/fixtures/messages), and reading tracetune's own export back."""

from __future__ import annotations

from pathlib import Path

from tracetune.conversation.wire import write_jsonl
from tracetune.readers import claude_code, codex, messages

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDS = FIXTURES / "messages" / "records.jsonl"


def test_each_line_is_a_session_with_its_system_prompt_and_tools():
    sessions = messages.read(RECORDS)
    # 7 lines: 4 records in the messages shape (1, 2, 3, 7); line 4 has no list, line 5 an
    # unknown role, line 6 is not JSON
    assert [s.id for s in sessions] == ["records:1", "records:2", "records:3", "records:7"]
    first = sessions[0]
    assert first.system_prompt == "You are a helpful coding agent."
    assert [t.name for t in first.tools] == ["read"]
    ep = first.episodes[0]
    assert ep.start == "record"
    assert [m.role for m in ep.messages] == ["user", "assistant", "tool", "assistant"]
    assert ep.messages[1].tool_calls[0].arguments == {"path": "a.py"}  # parsed from a JSON string
    assert first.trainable_turns == 2
    assert sessions[2].system_prompt == "Answer in French."  # a leading developer message
    assert sessions[1].episodes[0].messages[0].images == 1
    assert sessions[1].episodes[0].messages[1].reasoning == "It has whiskers."


def test_meta_empty_turns_and_bad_lines_are_reported():
    sessions = messages.read(RECORDS)
    third = sessions[2].episodes[0].messages
    assert [(m.trainable, m.untrainable_reason) for m in third if m.role == "assistant"] == [
        (True, None), (False, "aborted"), (False, "empty")]
    call = third[1].tool_calls[0]
    assert call.arguments_raw == "ls -la" and call.arguments == {"input": "ls -la"}
    warnings = [(w.kind, w.line) for s in sessions for w in s.warnings]
    assert sorted(warnings) == [("bad_arguments", 3), ("bad_field", 4), ("bad_field", 5),
                                ("invalid_json", 6), ("orphan_tool_result", 7)]


def test_sniff():
    assert messages.sniff([{"messages": [{"role": "user", "content": "hi"}]}])
    assert not messages.sniff([{"messages": "x"}])
    assert not messages.sniff([{"type": "session_meta", "payload": {}}])


def test_an_export_reads_back_as_the_same_sessions(tmp_path):
    originals = (claude_code.read(FIXTURES / "claude_code" / "branches.jsonl")
                 + codex.read(FIXTURES / "codex" / "compacted.jsonl"))
    out = tmp_path / "export.jsonl"
    assert write_jsonl(originals, str(out)) == sum(len(s.episodes) for s in originals)
    back = messages.read(out)
    assert [s.id for s in back] == [s.id for s in originals]
    for before, after in zip(originals, back):
        assert after.agent == before.agent
        assert after.system_prompt == before.system_prompt
        assert after.trainable_turns == before.trainable_turns
        assert after.assistant_turns == before.assistant_turns
        assert [e.start for e in after.episodes] == [e.start for e in before.episodes]
        assert [[m.content for m in e.messages] for e in after.episodes] == \
               [[m.content for m in e.messages] for e in before.episodes]
        assert after.warnings == ()


def test_a_tool_result_whose_call_id_is_not_text_is_a_bad_field_not_a_crash(tmp_path):
    """An integer id is written out as call ids are; a list (found by the fuzz test) skips the record with a warning."""
    import json

    call = {"id": 7, "type": "function", "function": {"name": "read", "arguments": "{}"}}
    good = [{"role": "user", "content": "read it"}, {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": 7, "content": "x"}, {"role": "assistant", "content": "done"}]
    bad = [{"role": "user", "content": "where?"}, {"role": "tool", "tool_call_id": [1, "a"], "content": "orphan"},
           {"role": "assistant", "content": "none"}]
    path = tmp_path / "ids.jsonl"
    path.write_text("\n".join(json.dumps({"messages": m}) for m in (good, bad)) + "\n", encoding="utf-8")
    sessions = messages.read(path)
    assert [s.id for s in sessions] == ["ids:1"]
    tool = sessions[0].episodes[0].messages[2]
    assert tool.tool_call_id == "7" == sessions[0].episodes[0].messages[1].tool_calls[0].id
    warnings = [(w.kind, w.line) for s in sessions for w in s.warnings]
    assert warnings == [("bad_field", 2)]
