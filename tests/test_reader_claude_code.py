"""The Claude Code reader on a real session and on hand-written ones (tests/fixtures/claude_code)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tracetune.conversation.validate import pairing_issues
from tracetune.readers import claude_code

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
REAL = SHARED / "claude-code" / "example_claude_code.jsonl"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "claude_code"


def read_one(path: Path, **options):
    sessions = claude_code.read(path, **options)
    assert len(sessions) == 1
    return sessions[0]


def roles(episode) -> str:
    return " ".join(m.role[0] for m in episode.messages)


@pytest.mark.skipif(not REAL.exists(), reason="shared traces absent")
def test_real_session_counts_match_a_hand_count():
    # Counted by hand in the file (35 lines, the last without a newline):
    # 18 assistant lines (4-6, 8-9, 11, 13, 15, 17-18, 20, 22, 24, 26, 28, 30, 32, 34) carry 12
    # distinct message.id values (msg_013GS.. on 4-6, msg_01YKo.. on 8-9, msg_015Tv.. on 17-18,
    # msg_01E4F.. on 26+28, msg_01VUZ.. on 30+32, seven single-line ones) -> 12 assistant turns.
    # 13 tool_use blocks (lines 6, 9, 11, 13, 15, 18, 20, 22, 24, 26, 28, 30, 32) and 13 user
    # lines holding one tool_result each (7, 10, 12, ..., 33), two of them is_error (10, 12).
    # Lines 1-2 are queue-operation, line 35 last-prompt; one root, one leaf, no sidechain.
    session = read_one(REAL)
    assert session.warnings == ()
    assert session.agent == "claude-code"
    assert session.stats.ignored == {"queue-operation": 2, "last-prompt": 1}
    assert session.stats.assistant_entries == 18
    assert len(session.episodes) == 1
    messages = session.episodes[0].messages
    assistants = [m for m in messages if m.role == "assistant"]
    calls = [c for m in assistants for c in m.tool_calls]
    results = [m for m in messages if m.role == "tool"]
    assert len(assistants) == session.assistant_turns == session.trainable_turns == 12
    assert len(calls) == 13
    assert len(results) == 13
    assert sum(r.is_error for r in results) == 2
    assert [m.role for m in messages].count("user") == 1
    assert pairing_issues(messages) == []
    assert {r.tool_call_id for r in results} == {c.id for c in calls}
    assert session.teacher_models == ("claude-opus-4-6",)
    assert session.format_version == "2.1.77"
    assert session.cwd and session.cwd.endswith("workspace")


@pytest.mark.skipif(not REAL.exists(), reason="shared traces absent")
def test_parallel_tool_calls_split_across_lines_become_one_turn():
    # Lines 26 and 28 share msg_01E4F5..; the result of the first call (line 27) sits between them.
    messages = read_one(REAL).episodes[0].messages
    turn = next(m for m in messages if [c.id for c in m.tool_calls] == ["toolu_01BEqCRPq2hfJGgbPCkSkX2K",
                                                                         "toolu_01T6ZvJdHBBqMF2p4uBAZTDd"])
    i = messages.index(turn)
    assert [m.tool_call_id for m in messages[i + 1:i + 3]] == [c.id for c in turn.tool_calls]
    first = next(m for m in messages if m.role == "assistant")
    assert first.reasoning and first.content.startswith("Let me find") and first.tool_calls[0].name == "ToolSearch"


@pytest.mark.skipif(not REAL.exists(), reason="shared traces absent")
def test_reading_never_writes_the_file():
    before = hashlib.sha256(REAL.read_bytes()).hexdigest()
    read_one(REAL)
    assert hashlib.sha256(REAL.read_bytes()).hexdigest() == before


def test_branches_are_separate_episodes_and_shared_turns_are_seen():
    session = read_one(FIXTURES / "branches.jsonl")
    first, second = session.episodes
    assert (first.start, second.start) == ("root", "branch")
    assert [m.content for m in first.messages if m.role == "user"] == ["List the files.", "Delete b.py."]
    assert "Delete b.py." not in [m.content for m in second.messages]
    shared = second.messages[1]
    assert shared.content.startswith("Here they are") and shared.untrainable_reason == "seen"
    assert session.assistant_turns == session.trainable_turns == 3
    assert session.stats.branch_points == 1
    # the progress line hanging off a2 is not a leaf of its own
    assert session.stats.ignored == {"file-history-snapshot": 1, "progress": 1, "summary": 1}
    assert session.warnings == ()


def test_sidechain_turns_get_their_own_context_only_episode():
    session = read_one(FIXTURES / "sidechain.jsonl", sidechains="context")
    main, side = session.episodes
    assert main.start == "root" and side.start == "sidechain"
    assert all(m.is_target for m in main.messages if m.role == "assistant")
    side_turns = [m for m in side.messages if m.role == "assistant"]
    assert len(side_turns) == 2
    assert {m.untrainable_reason for m in side_turns} == {"sidechain"}
    assert side.messages[0].content == "Find where config is loaded"
    assert session.trainable_turns == 2 and session.assistant_turns == 4
    assert set(session.teacher_models) == {"claude-opus-4-6", "claude-haiku-4-5"}


def test_sidechains_are_trained_by_default_in_their_own_episode_with_their_own_prompt():
    session = read_one(FIXTURES / "sidechain.jsonl")
    main, side = session.episodes
    assert side.start == "sidechain" and side.messages[0].role == "user"
    assert side.messages[0].content == "Find where config is loaded"  # the Task prompt, not the main conversation
    assert not {m.entry_id for m in side.messages} & {m.entry_id for m in main.messages}
    assert all(m.is_target for m in side.messages if m.role == "assistant")
    assert session.trainable_turns == session.assistant_turns == 4
    assert session.warnings == ()


def test_dropped_sidechains_are_not_read_but_counted():
    session = read_one(FIXTURES / "sidechain.jsonl", sidechains="drop")
    (main,) = session.episodes
    assert main.start == "root" and session.assistant_turns == session.trainable_turns == 2
    assert session.stats.ignored["sidechain"] == 4
    assert session.teacher_models == ("claude-opus-4-6",)


def test_the_sidechains_option_reaches_the_reader_from_the_commands(tmp_path):
    from typer.testing import CliRunner

    from tracetune.cli.main import app
    from tracetune.pipeline.config import load_config
    from tracetune.readers import read_paths
    from tracetune.readers.registry import ReadOptions

    path = FIXTURES / "sidechain.jsonl"
    assert read_paths([path], options=ReadOptions(sidechains="context")).sessions[0].trainable_turns == 2
    config = load_config(None, ["traces.sidechains='drop'"], name="t")
    assert config.traces.read_options() == ReadOptions(sidechains="drop")
    for mode, turns in (("train", 4), ("context", 2), ("drop", 2)):
        out = CliRunner().invoke(app, ["inspect", "--json", "--sidechains", mode, str(path)])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["total"]["trainable_turns"] == turns
    bad = CliRunner().invoke(app, ["inspect", "--sidechains", "sometimes", str(path)])
    assert bad.exit_code != 0 and "sidechains" in str(bad.exception)


@pytest.mark.skipif(not (SHARED / "claude-code").is_dir(), reason="shared traces absent")
def test_real_files_read_the_same_in_every_sidechain_mode_but_their_sidechains():
    for path in sorted((SHARED / "claude-code").glob("*.jsonl")):
        modes = {mode: read_one(path, sidechains=mode) for mode in ("train", "context", "drop")}
        side = [e for e in modes["train"].episodes if e.start == "sidechain"]
        side_turns = sum(1 for e in side for m in e.messages if m.role == "assistant" and m.is_target)
        assert modes["train"].trainable_turns - side_turns == modes["context"].trainable_turns
        assert modes["drop"].trainable_turns == modes["context"].trainable_turns
        for episode in side:  # each a whole conversation: its own prompt first
            assert episode.messages[0].role == "user" and episode.messages[0].content


def test_compaction_starts_a_new_episode_at_the_summary():
    session = read_one(FIXTURES / "compaction.jsonl")
    before, after = session.episodes
    assert (before.start, after.start) == ("root", "compaction")
    assert after.messages[0].origin == "compactionSummary"
    assert "Run the tests." not in [m.content for m in after.messages]
    assert [m.content for m in after.messages if m.is_target] == ["Fixed the failing test."]
    assert session.stats.compactions == 1
    assert before.messages[2].is_error


def test_split_assistant_lines_merge_and_sibling_results_are_spliced():
    session = read_one(FIXTURES / "split.jsonl")
    assert len(session.episodes) == 1  # the one-result sibling branch (y2) is not an episode
    messages = session.episodes[0].messages
    assert roles(session.episodes[0]) == "u a t t a t t a"
    first = messages[1]
    assert first.reasoning == "Read both files." and first.content == "Reading them."
    assert [c.id for c in first.tool_calls] == ["toolu_a", "toolu_b"]
    assert [m.tool_call_id for m in messages[5:7]] == ["toolu_c", "toolu_d"]
    assert pairing_issues(messages) == []
    assert session.stats.assistant_entries == 7 and session.assistant_turns == 3
    assert session.warnings == ()


def test_injected_context_is_never_a_target():
    session = read_one(FIXTURES / "context.jsonl")
    messages = session.episodes[0].messages
    origins = [m.origin for m in messages if m.role == "user"]
    assert origins[:3] == ["meta", "command", None]
    assert "interrupt" in origins
    by_reason = {m.untrainable_reason for m in messages if m.role == "assistant" and not m.trainable}
    assert by_reason == {"error", "empty"}
    assert [m.content for m in messages if m.is_target][-1] == "main.py starts the server."
    assert session.stats.images == 1
    assert session.stats.ignored == {"last-prompt": 1, "queue-operation": 1, "redacted_thinking": 1,
                                     "system:turn_duration": 1}
    # the stale tool_result (no call anywhere) is the only problem, and it is reported
    assert [w.kind for w in session.warnings] == ["orphan_tool_result"]
    assert "toolu_gone" not in [m.tool_call_id for m in messages]


def test_sniff_accepts_claude_code_and_rejects_other_formats():
    assert claude_code.sniff([{"type": "queue-operation", "operation": "enqueue", "sessionId": "s"}])
    assert claude_code.sniff([{"type": "user", "uuid": "u", "parentUuid": None, "message": {}}])
    assert not claude_code.sniff([{"type": "session", "version": 3, "id": "x"}])
    assert not claude_code.sniff([{"type": "session_meta", "payload": {}}])
    assert not claude_code.sniff([{"messages": []}])


def test_empty_and_garbage_files_become_warnings(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert [w.kind for w in read_one(empty).warnings] == ["empty_file"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"type":"user","uuid":"a","parentUuid":"zz","message":{"role":"user","content":"hi"}}\n'
        '{"type":"mystery","uuid":"b"}\n[1,2]\n'
        '{"type":"assistant","uuid":"c","parentUuid":"a",'
        '"message":{"id":"m","content":[{"type":"text","text":"yo"}]}}\n'
        '{"trunc'
    )
    session = read_one(bad)
    kinds = sorted(w.kind for w in session.warnings)
    assert kinds == ["dangling_parent", "not_an_object", "truncated_line", "unknown_entry"]
    assert session.trainable_turns == 1


def test_parent_loops_are_broken_and_warned(tmp_path):
    path = tmp_path / "loop.jsonl"
    path.write_text(
        '{"type":"user","uuid":"c","parentUuid":"e","message":{"role":"user","content":"loop start"}}\n'
        '{"type":"assistant","uuid":"d","parentUuid":"c",'
        '"message":{"id":"m2","content":[{"type":"text","text":"in loop"}]}}\n'
        '{"type":"user","uuid":"e","parentUuid":"d","message":{"role":"user","content":"loop end"}}\n'
    )
    session = read_one(path)
    assert [(w.kind, w.line) for w in session.warnings] == [("cycle", 1)]
    assert [m.content for m in session.episodes[0].messages] == ["loop start", "in loop", "loop end"]
