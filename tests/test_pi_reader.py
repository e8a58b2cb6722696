"""The pi reader on small hand-made sessions, the bundled fixtures and the shared real session."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from tracetune.conversation.validate import pairing_issues
from tracetune.errors import UnreadableFileError
from tracetune.readers import pi
from tracetune.readers.pi_context import BRANCH_SUMMARY_PREFIX, COMPACTION_SUMMARY_PREFIX

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
FIXTURES = ROOT / "tests" / "fixtures" / "pi"
SAMPLE = ROOT / "src" / "tracetune" / "data" / "sample_pi_session.jsonl"

HEADER = {"type": "session", "version": 3, "id": "sess-1", "timestamp": "2026-01-01T00:00:00Z", "cwd": "/p"}


def msg(eid, parent, message, **extra):
    return {"type": "message", "id": eid, "parentId": parent, "timestamp": "t", "message": message, **extra}


def user(eid, parent, text):
    return msg(eid, parent, {"role": "user", "content": [{"type": "text", "text": text}]})


def asst(eid, parent, text="ok", calls=(), stop="stop", model="m1", provider="prov"):
    content = ([{"type": "text", "text": text}] if text else []) + [
        {"type": "toolCall", "id": c, "name": "bash", "arguments": {"command": c}} for c in calls
    ]
    body = {"role": "assistant", "content": content, "stopReason": stop}
    if model:
        body.update(provider=provider, model=model)
    return msg(eid, parent, body)


def result(eid, parent, call_id, text="out"):
    body = {"role": "toolResult", "toolCallId": call_id, "toolName": "bash", "content": [{"type": "text", "text": text}], "isError": False}
    return msg(eid, parent, body)


def write(tmp_path: Path, entries, header=HEADER, name="s.jsonl", tail="\n") -> Path:
    lines = ([json.dumps(header)] if header else []) + [e if isinstance(e, str) else json.dumps(e) for e in entries]
    path = tmp_path / name
    path.write_text("\n".join(lines) + tail)
    return path


def read_one(path):
    [session] = pi.read(path)
    return session


def judged(session):
    """entry id -> (episode, index) of every assistant turn's one non-"seen" appearance."""
    out = {}
    for ep in session.episodes:
        for i, m in enumerate(ep.messages):
            if m.role == "assistant" and m.untrainable_reason != "seen":
                assert m.entry_id not in out
                out[m.entry_id] = (ep, i)
    return out


def kinds(session):
    return Counter(w.kind for w in session.warnings)


def test_linear_session_is_one_growing_episode(tmp_path):
    s = read_one(write(tmp_path, [user("u1", None, "hi"), asst("a1", "u1", calls=["c1"]), result("r1", "a1", "c1"),
                                  asst("a2", "r1", "done")]))
    [ep] = s.episodes
    assert [m.role for m in ep.messages] == ["user", "assistant", "tool", "assistant"]
    assert ep.target_indices == (1, 3)
    assert ep.messages[1].tool_calls[0].arguments == {"command": "c1"}
    assert ep.messages[2].tool_call_id == "c1" and ep.messages[2].name == "bash"
    assert ep.messages[3].model == "prov/m1"
    assert s.id == "sess-1" and s.format_version == "3" and s.teacher_models == ("prov/m1",)
    assert s.warnings == ()


def test_branches_are_separate_episodes_and_each_turn_is_judged_once(tmp_path):
    entries = [user("u1", None, "q"), asst("a1", "u1", "first"), user("u2", "a1", "left"), asst("a2", "u2", "L"),
               user("u3", "a1", "right"), asst("a3", "u3", "R")]
    s = read_one(write(tmp_path, entries))
    assert [ep.start for ep in s.episodes] == ["root", "branch"]
    left, right = s.episodes
    assert [m.content for m in right.messages] == ["q", "first", "right", "R"]
    assert right.messages[1].untrainable_reason == "seen" and right.target_indices == (3,)
    assert set(judged(s)) == {"a1", "a2", "a3"}
    assert s.stats.branch_points == 1 and s.stats.leaves == 2
    assert "left" not in [m.content for m in right.messages]


def test_compaction_keeps_summary_and_tail_and_starts_an_episode(tmp_path):
    entries = [user("u1", None, "old"), asst("a1", "u1", "A1"), user("u2", "a1", "kept"), asst("a2", "u2", "A2"),
               {"type": "compaction", "id": "c", "parentId": "a2", "timestamp": "t", "summary": "S",
                "firstKeptEntryId": "u2", "tokensBefore": 9},
               user("u3", "c", "new"), asst("a3", "u3", "A3")]
    s = read_one(write(tmp_path, entries))
    first, second = s.episodes
    assert second.start == "compaction"
    assert [m.content for m in second.messages] == [COMPACTION_SUMMARY_PREFIX + "S\n</summary>", "kept", "A2", "new", "A3"]
    assert second.messages[0].origin == "compactionSummary"
    assert second.messages[2].untrainable_reason == "seen" and second.target_indices == (4,)
    assert s.stats.compactions == 1


def test_v1_first_kept_index_counts_the_header(tmp_path):
    lines = [{"type": "message", "message": {"role": "user", "content": "u0"}},
             {"type": "message", "message": {"role": "assistant", "content": [{"type": "text", "text": "a0"}]}},
             {"type": "message", "message": {"role": "user", "content": "u1"}},
             {"type": "compaction", "summary": "S", "firstKeptEntryIndex": 2},
             {"type": "message", "message": {"role": "assistant", "content": [{"type": "text", "text": "a1"}]}}]
    s = read_one(write(tmp_path, lines, header={"type": "session", "id": "v1", "timestamp": "t", "cwd": "/p",
                                                 "branchedFrom": "/old.jsonl"}))
    assert s.format_version == "1" and s.parent_ref == "/old.jsonl"
    # index 2 is the second entry after the header: the assistant "a0"
    assert [m.content for m in s.episodes[1].messages][1:] == ["a0", "u1", "a1"]


def test_pi_message_kinds_become_user_messages(tmp_path):
    bash = {"role": "bashExecution", "command": "ls", "output": "x", "exitCode": 2, "cancelled": False, "truncated": False}
    hidden = dict(bash, command="cat secret", excludeFromContext=True)
    entries = [user("u1", None, "q"), msg("b1", "u1", bash), msg("b2", "b1", hidden),
               {"type": "custom_message", "id": "cm", "parentId": "b2", "customType": "x", "content": "note", "display": True},
               {"type": "branch_summary", "id": "bs", "parentId": "cm", "fromId": "u1", "summary": "went left"},
               {"type": "label", "id": "l1", "parentId": "bs", "targetId": "u1", "label": "x"},
               msg("i1", "l1", {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image", "data": "", "mimeType": "image/png"}]}),
               asst("a1", "i1")]
    s = read_one(write(tmp_path, entries))
    [ep] = s.episodes
    contents = [m.content for m in ep.messages]
    assert contents[1] == "Ran `ls`\n```\nx\n```\n\nCommand exited with code 2"
    assert not any("secret" in c for c in contents)
    assert contents[2] == "note" and ep.messages[2].origin == "custom"
    assert contents[3] == BRANCH_SUMMARY_PREFIX + "went left</summary>"
    assert contents[4] == "see\n[image]" and ep.messages[4].images == 1 and s.stats.images == 1
    assert s.stats.ignored == {"bashExecution (excludeFromContext)": 1, "label": 1}


def test_aborted_error_and_empty_turns_are_context_not_targets(tmp_path):
    entries = [user("u1", None, "q"), asst("a1", "u1", "", stop="aborted"), user("u2", "a1", "again"),
               asst("a2", "u2", "partial", stop="error"), user("u3", "a2", "again"), asst("a3", "u3", "  "),
               user("u4", "a3", "go"), asst("a4", "u4", "fine")]
    [ep] = read_one(write(tmp_path, entries)).episodes
    reasons = [m.untrainable_reason for m in ep.messages if m.role == "assistant"]
    assert reasons == ["aborted", "error", "empty", None]
    assert ep.target_indices == (7,)


def test_thinking_is_reasoning_and_model_change_names_the_teacher(tmp_path):
    thinking = msg("a1", "u1", {"role": "assistant", "stopReason": "stop",
                                "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "yes"}]})
    entries = [user("u1", None, "q"), {"type": "model_change", "id": "m", "parentId": "u1", "provider": "openai", "modelId": "gpt-5"},
               dict(thinking, parentId="m")]
    s = read_one(write(tmp_path, entries))
    answer = s.episodes[0].messages[-1]
    assert answer.reasoning == "hmm" and answer.content == "yes" and answer.model == "openai/gpt-5"
    assert s.teacher_models == ("openai/gpt-5",)


# --- bad input: a counted warning with file and line, never a traceback, never a silent loss ---


def test_truncated_last_line_and_invalid_json(tmp_path):
    good = [user("u1", None, "q"), "{not json", asst("a1", "u1")]
    path = write(tmp_path, good + [json.dumps(asst("a2", "a1"))[:30]], tail="")
    s = read_one(path)
    assert [(w.kind, w.line) for w in s.warnings] == [("invalid_json", 3), ("truncated_line", 5)]
    assert all(w.path == str(path) for w in s.warnings)
    assert set(judged(s)) == {"a1"}


def test_unknown_entry_type_keeps_the_tree_connected(tmp_path):
    entries = [user("u1", None, "q"), {"type": "future_thing", "id": "f", "parentId": "u1"}, asst("a1", "f")]
    s = read_one(write(tmp_path, entries))
    assert [(w.kind, w.line) for w in s.warnings] == [("unknown_entry", 3)]
    assert [m.content for m in s.episodes[0].messages] == ["q", "ok"]


def test_dangling_parent_becomes_a_root(tmp_path):
    s = read_one(write(tmp_path, [user("u1", None, "q"), asst("a1", "u1"), user("u2", "nowhere", "orphan"), asst("a2", "u2")]))
    assert [(w.kind, w.line) for w in s.warnings] == [("dangling_parent", 4)]
    assert set(judged(s)) == {"a1", "a2"}
    ep, i = judged(s)["a2"]
    assert [m.content for m in ep.context_for(i)] == ["orphan"]


def test_cycle_is_broken_without_hanging(tmp_path):
    entries = [user("u1", "a1", "q"), asst("a1", "u1"), asst("self", "self")]
    s = read_one(write(tmp_path, entries))
    assert kinds(s)["cycle"] == 2
    assert sorted(w.line for w in s.warnings if w.kind == "cycle") == [2, 4]
    assert set(judged(s)) == {"a1", "self"}


def test_empty_file_is_an_empty_session_with_a_warning(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    s = read_one(path)
    assert s.episodes == () and [w.kind for w in s.warnings] == ["empty_file"]


def test_binary_file_is_unreadable(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(UnreadableFileError, match="binary"):
        pi.read(path)


def test_orphan_tool_result_is_warned_and_kept(tmp_path):
    s = read_one(write(tmp_path, [user("u1", None, "q"), result("r1", "u1", "ghost"), asst("a1", "r1")]))
    assert [(w.kind, w.line) for w in s.warnings] == [("orphan_tool_result", 3)]
    assert [m.role for m in s.episodes[0].messages] == ["user", "tool", "assistant"]


def test_duplicate_ids_keep_both_entries(tmp_path):
    s = read_one(write(tmp_path, [user("u1", None, "q"), asst("x", "u1", "one"), user("u2", "u1", "again"), asst("x", "u2", "two")]))
    assert [(w.kind, w.line) for w in s.warnings] == [("duplicate_id", 5)]
    assert s.assistant_turns == 2 and len({ep.id for ep in s.episodes}) == len(s.episodes)


def test_missing_header_reads_the_entries(tmp_path):
    s = read_one(write(tmp_path, [user("u1", None, "q"), asst("a1", "u1")], header=None, name="2026_abc.jsonl"))
    assert kinds(s)["missing_header"] == 1 and s.id == "abc" and set(judged(s)) == {"a1"}


def test_reading_never_writes_the_file(tmp_path):
    path = tmp_path / "copy.jsonl"
    path.write_bytes((FIXTURES / "v1_linear.jsonl").read_bytes())
    before = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    pi.read(path)
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.jsonl")) + [SAMPLE], ids=lambda p: p.name)
def test_fixtures_judge_every_assistant_entry_once(path):
    s = read_one(path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assistants = sum(1 for o in lines if o.get("type") == "message" and o["message"]["role"] == "assistant")
    assert s.assistant_turns == assistants == s.stats.assistant_entries
    for ep in s.episodes:
        assert not [i for i in pairing_issues(ep.messages) if i.kind == "orphan_tool_result"]


def test_shared_real_session_figures():
    path = SHARED / "pi" / "before-compaction.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    raw = [json.loads(x) for x in path.read_text().splitlines()]
    stops = Counter(o["message"].get("stopReason") for o in raw if o["type"] == "message" and o["message"]["role"] == "assistant")
    s = read_one(path)
    assert s.assistant_turns == sum(stops.values())
    assert s.trainable_turns == sum(stops.values()) - stops["aborted"] - stops["error"]
    assert len(s.episodes) == 1 + sum(o["type"] == "compaction" for o in raw)
    assert s.parent_ref == raw[0]["branchedFrom"]


def test_episodes_survive_the_wire_export():
    from tracetune.conversation.wire import episode_from_wire, session_to_records

    s = read_one(SAMPLE)
    for record, episode in zip(session_to_records(s), s.episodes):
        back, _, _ = episode_from_wire(json.loads(json.dumps(record)))
        assert back.messages == episode.messages


def test_compaction_keeping_an_entry_off_the_path_keeps_only_the_summary(tmp_path):
    entries = [user("u1", None, "old"), asst("a1", "u1"),
               {"type": "compaction", "id": "c", "parentId": "a1", "summary": "S", "firstKeptEntryId": "gone"},
               user("u2", "c", "new"), asst("a2", "u2")]
    s = read_one(write(tmp_path, entries))
    assert [(w.kind, w.line) for w in s.warnings] == [("compaction_target_missing", 4)]
    assert [m.content for m in s.episodes[1].messages][1:] == ["new", "ok"]


def test_pairing_issues_orphans_and_unanswered_calls():
    from tracetune.conversation.types import Message, ToolCall

    call = Message(role="assistant", tool_calls=(ToolCall("c1", "bash", {}), ToolCall("c2", "bash", {})))
    answered = Message(role="tool", tool_call_id="c1")
    ghost = Message(role="tool", tool_call_id="zz")
    issues = pairing_issues([Message(role="user", content="q"), call, answered, ghost, Message(role="user", content="next")])
    assert [(i.kind, i.index, i.tool_call_id) for i in issues] == [
        ("unanswered_tool_call", 1, "c2"), ("orphan_tool_result", 3, "zz")]
    # a call at the very end (the session stopped mid-turn) is not a problem
    assert pairing_issues([Message(role="user", content="q"), call, answered]) == []
