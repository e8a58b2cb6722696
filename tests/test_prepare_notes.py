"""prepare says which files it skipped and which turns it dropped, per agent and reason, with the fix."""

from __future__ import annotations

import json

from tracetune.prepare.notes import prepare_notes
from tracetune.prepare.summary import PrepareSummary


def stats(**over):
    base = {
        "max_length": 4096,
        "read": {"file_errors": []},
        "sessions": [
            {"agent": "claude-code", "targets": 60, "dropped_by_reason": {"too_long": 60}, "prefix_tokens": 4365},
            {"agent": "claude-code", "targets": 40, "dropped_by_reason": {"too_long": 40}, "prefix_tokens": 4100},
            {"agent": "pi", "targets": 50, "dropped_by_reason": {"too_long": 3, "not_prefix_stable": 2},
             "prefix_tokens": 900},
            {"agent": "codex", "targets": 9, "dropped_by_reason": {}, "prefix_tokens": 1500},
        ],
        "warnings": ["claude-code: the system prompt and tool definitions take up to 4,365 tokens of every window",
                     "codex: the system prompt and tool definitions take up to 1,500 tokens of every window"],
    }
    return PrepareSummary.model_validate({**base, **over})


def test_dropped_turns_are_summed_per_agent_and_reason_with_the_fix():
    notes = prepare_notes(stats())
    assert notes[0] == ("claude-code: 100 of 100 turns too long at 4,096 tokens: the system prompt and tool "
                        "definitions alone take 4,365 tokens; raise max_length well above 4,365, or give shorter "
                        "tool definitions (tools_file) or a shorter system prompt")
    assert notes[1].startswith("pi: 2 of 50 turns dropped (not_prefix_stable):") and "tool-aware" in notes[1]
    assert notes[2] == ("pi: 3 of 50 turns too long at 4,096 tokens: a turn with its tool result does not fit; "
                        "raise max_length, or lower clip_tool_result_chars")
    # the prefix warning is not repeated for the agent whose line already names its prefix; others are kept
    assert notes[3:] == ["codex: the system prompt and tool definitions take up to 1,500 tokens of every window"]


def test_skipped_files_are_named_up_to_a_few_then_counted():
    errors = [{"path": f"/t/{i}.jsonl", "error": f"/t/{i}.jsonl: is a FIFO; skipped"} for i in range(7)]
    errors[1] = {"path": "/t/1.jsonl", "error": "holds no JSON object lines"}
    notes = prepare_notes(stats(read={"file_errors": errors}, sessions=[], warnings=[]))
    assert notes[0] == "skipped /t/0.jsonl: is a FIFO"
    assert notes[1] == "skipped /t/1.jsonl: holds no JSON object lines"
    assert len(notes) == 6 and notes[-1].startswith("skipped 2 more files")


def test_prepare_prints_the_notes(tiny_student, tmp_path):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    traces = tmp_path / "traces"
    traces.mkdir()
    long = " ".join(f"w{k}" for k in range(1500))
    rows = [{"messages": [{"role": "user", "content": f"Task {i}: explain module_{i}.py"},
                          {"role": "assistant", "content": f"module_{i} returns {i}. {long if i < 2 else ''}"}]}
            for i in range(6)]
    (traces / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (traces / "broken.jsonl").write_text("not json at all\n")
    res = CliRunner().invoke(app, ["prepare", str(traces), "--student", str(tiny_student), "--out",
                                   str(tmp_path / "out"), "--max-length", "400"], env={"COLUMNS": "500"})
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "broken.jsonl: holds no JSON object lines (is this a session file?)" in out, out
    assert "warning: messages: 2 of 6 turns too long at 400 tokens" in out and "raise max_length" in out
