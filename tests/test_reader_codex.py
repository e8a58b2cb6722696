"""The Codex CLI reader on a real rollout and on hand-written ones (tests/fixtures/codex)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tracetune.conversation.validate import pairing_issues
from tracetune.readers import codex

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
REAL = SHARED / "codex" / "example_codex_session.jsonl"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "codex"


def read_one(path: Path):
    sessions = codex.read(path)
    assert len(sessions) == 1
    return sessions[0]


@pytest.mark.skipif(not REAL.exists(), reason="shared traces absent")
def test_real_rollout_counts_match_a_hand_count():
    # Counted by hand in the file (95 lines, the last without a newline):
    # response_item lines: 17 function_call (9, 17-19, 28-30, 48, 52, 58, 62, 68-69, 74, 78, 82, 86),
    # 1 custom_tool_call (40, apply_patch), 5 reasoning (11, 20, 32, 41, 91), 7 assistant messages
    # (13, 22, 34, 43, 54, 64, 93) = 30 output items; 17 function_call_output + 1
    # custom_tool_call_output (46); messages developer (3), user (4: environment_context, 6: prompt).
    # Runs of output items with no input item between them (one model response each):
    # 9-13, 17-22, 28-34, 40-43, 48, 52-54, 58, 62-64, 68-69, 74, 78, 82, 86, 91-93 -> 14 turns.
    # 42 event_msg lines (28 token_count, 7 agent_message, 3 agent_reasoning, task_started,
    # user_message, patch_apply_end, task_complete) are UI echoes: 1 + 1 + 42 + 51 items = 95 lines.
    session = read_one(REAL)
    assert session.warnings == ()
    assert session.agent == "codex" and session.format_version == "0.130.0" and session.cwd == "/workspace"
    assert session.system_prompt and session.system_prompt.startswith("You are Codex")
    assert session.teacher_models == ("openai/gpt-5.5",)
    assert session.stats.assistant_entries == 30
    assert sum(n for k, n in session.stats.ignored.items() if k.startswith("event_msg:")) == 42
    assert session.stats.ignored["event_msg:token_count"] == 28
    (episode,) = session.episodes
    messages = episode.messages
    assistants = [m for m in messages if m.role == "assistant"]
    calls = [c for m in assistants for c in m.tool_calls]
    results = [m for m in messages if m.role == "tool"]
    assert len(assistants) == session.assistant_turns == session.trainable_turns == 14
    assert len(calls) == 18 and len(results) == 18
    assert sorted(c.name for c in calls).count("apply_patch") == 1
    assert pairing_issues(messages) == []
    assert {r.tool_call_id for r in results} == {c.id for c in calls}
    # the echoes are not messages: one user prompt, no duplicated assistant text
    assert [m.origin for m in messages if m.role == "user"] == ["developer", "injected", None]
    texts = [m.content for m in assistants if m.content]
    assert len(texts) == len(set(texts)) == 7
    assert sum(1 for m in assistants if m.reasoning) == 3  # lines 20 and 41 have no summary text


@pytest.mark.skipif(not REAL.exists(), reason="shared traces absent")
def test_apply_patch_free_text_is_kept_raw():
    messages = read_one(REAL).episodes[0].messages
    call = next(c for m in messages for c in m.tool_calls if c.name == "apply_patch")
    assert call.arguments_raw and call.arguments_raw.startswith("*** Begin Patch")
    assert call.arguments == {"input": call.arguments_raw}


@pytest.mark.skipif(not REAL.exists(), reason="shared traces absent")
def test_reading_never_writes_the_file():
    before = hashlib.sha256(REAL.read_bytes()).hexdigest()
    read_one(REAL)
    assert hashlib.sha256(REAL.read_bytes()).hexdigest() == before


def test_one_response_is_one_turn_whatever_the_item_order():
    session = read_one(FIXTURES / "basic.jsonl")
    messages = session.episodes[0].messages
    assert [m.role[0] for m in messages] == list("uuuatatta")
    first = messages[3]
    # function_call (line 7) came before reasoning (9) and text (11) of the same response
    assert first.content == "Let me look at hello.py first." and first.reasoning == "**Reading the file**"
    assert [c.id for c in first.tool_calls] == ["call_cat"]
    assert messages[-1].reasoning == "The patch applied."  # raw reasoning text when no summary
    assert session.teacher_models == ("openai/gpt-5-codex",)
    assert messages[2].images == 1 and session.stats.images == 1


def test_bad_arguments_are_counted_and_kept_raw():
    session = read_one(FIXTURES / "basic.jsonl")
    assert [(w.kind, w.line) for w in session.warnings] == [("bad_arguments", 15)]
    calls = {c.id: c for m in session.episodes[0].messages for c in m.tool_calls}
    assert calls["call_bad"].arguments_raw == '{"cmd": "python hello.py"'
    assert calls["call_patch"].arguments_raw.startswith("*** Begin Patch")
    results = {m.tool_call_id: m for m in session.episodes[0].messages if m.role == "tool"}
    assert results["call_bad"].is_error and not results["call_cat"].is_error
    assert session.stats.ignored["response_item:web_search_call"] == 1


def test_compaction_starts_episodes_from_replacement_history_or_summary():
    session = read_one(FIXTURES / "compacted.jsonl")
    first, second, third = session.episodes
    assert [e.start for e in session.episodes] == ["root", "compaction", "compaction"]
    assert second.messages[1].untrainable_reason == "seen"  # carried over by replacement_history
    assert [m.content for m in second.messages if m.is_target] == ["", "LICENSE has 201 lines."]
    assert third.messages[0].origin == "compactionSummary"
    assert session.assistant_turns == session.trainable_turns == 5
    assert session.stats.compactions == 2
    assert all(pairing_issues(e.messages) == [] for e in session.episodes)


def test_rollback_makes_a_branch_without_the_undone_turn():
    session = read_one(FIXTURES / "rollback.jsonl")
    old, new = session.episodes
    assert new.start == "branch"
    assert [m.content for m in new.messages] == ["Name a colour.", "Blue.", "A warm one.", "Orange."]
    assert new.messages[1].untrainable_reason == "seen"
    assert session.trainable_turns == 3
    assert session.parent_ref == "codex-parent"


def test_legacy_rollouts_read_the_same_way():
    session = read_one(FIXTURES / "legacy.jsonl")
    assert session.id == "codex-legacy" and session.system_prompt == "Be brief."
    messages = session.episodes[0].messages
    assert messages[1].tool_calls[0].name == "local_shell"
    assert messages[1].tool_calls[0].arguments["command"] == ["ls", "/tmp"]
    assert session.warnings == () and session.stats.ignored == {"record_type:state": 2}


def test_sniff():
    assert codex.sniff([{"timestamp": "t", "type": "session_meta", "payload": {"id": "x"}}])
    assert codex.sniff([{"id": "x", "timestamp": "t", "instructions": None}])
    assert not codex.sniff([{"type": "user", "uuid": "u", "parentUuid": None}])
    assert not codex.sniff([{"messages": []}])


def test_unknown_lines_and_orphans_are_warned(tmp_path):
    path = tmp_path / "rollout.jsonl"
    lines = [
        {"type": "session_meta", "payload": {"id": "s"}},
        {"type": "response_item", "payload": {"type": "message", "role": "user", "content": "hi"}},
        {"type": "response_item", "payload": {"type": "function_call_output", "call_id": "nope", "output": "x"}},
        {"type": "response_item", "payload": {"type": "mystery"}},
        {"type": "weird", "payload": {}},
        {"type": "response_item", "payload": "not an object"},
        {"type": "response_item", "payload": {"type": "message", "role": "assistant", "content": 5}},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    session = read_one(path)
    kinds = sorted(w.kind for w in session.warnings)
    assert kinds == ["bad_field", "bad_field", "orphan_tool_result", "unknown_entry", "unknown_entry"]
    assert session.assistant_turns == 1


def test_outputs_stay_with_their_calls_across_developer_and_system_messages():
    session = read_one(FIXTURES / "interleaved.jsonl")
    (episode,) = session.episodes
    shape = [(m.role, m.tool_call_id or ",".join(c.id for c in m.tool_calls) or m.content[:12]) for m in episode.messages]
    assert shape == [
        ("user", "Run the test"),
        ("assistant", "call_a"), ("tool", "call_a"), ("user", "Approved com"),
        ("assistant", "call_b,call_c"), ("tool", "call_b"), ("tool", "call_c"), ("user", "<model_switc"),
        ("assistant", "call_d"), ("tool", "call_d"), ("user", "<permissions"), ("user", "Approved fil"),
        ("assistant", "call_e"), ("user", "The user int"), ("user", "Stop, that i"),
        ("assistant", "Stopped. cal"),
    ]
    assert {m.origin for m in episode.messages if m.role == "user"} == {"developer", None}
    assert {m.name for m in episode.messages if m.role == "tool"} == {"exec_command", "apply_patch"}
    # the only pairing problem left is the call the user really interrupted
    assert [(w.kind, w.message.split()[2]) for w in session.warnings] == [("unanswered_tool_call", "call_e")]
    assert all(m.trainable for m in episode.messages if m.role == "assistant")


@pytest.mark.skipif(not SHARED.joinpath("codex").is_dir(), reason="shared traces absent")
def test_real_rollouts_have_no_pairing_warnings():
    for path in sorted(SHARED.joinpath("codex").glob("*.jsonl")):
        session = read_one(path)
        kinds = {w.kind for w in session.warnings}
        assert not kinds & {"orphan_tool_result", "unanswered_tool_call"}, path.name
        for episode in session.episodes:
            assert pairing_issues(episode.messages) == [], path.name
