"""``tracetune inspect``: the figures a user reads before training, on files and directories."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracetune.cli.main import app, main

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
FIXTURES = ROOT / "tests" / "fixtures" / "pi"
SAMPLE = ROOT / "src" / "tracetune" / "data" / "sample_pi_session.jsonl"


def inspect_json(*paths) -> dict:
    out = CliRunner().invoke(app, ["inspect", "--json", *map(str, paths)])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def raw_counts(path: Path) -> tuple[int, Counter]:
    """Assistant entries and tool calls by name, straight from the file."""
    turns, tools = 0, Counter()
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if obj.get("type") == "message" and obj["message"]["role"] == "assistant":
            turns += 1
            tools.update(b["name"] for b in obj["message"]["content"] if b["type"] == "toolCall")
    return turns, tools


def test_readme_first_command_shows_the_sample():
    out = CliRunner().invoke(app, ["inspect", str(SAMPLE)])
    assert out.exit_code == 0, out.output
    turns, _ = raw_counts(SAMPLE)
    assert re.search(rf"assistant turns\s*│\s*{turns}\s*│", out.stdout), out.stdout
    assert "tool calls by tool" in out.stdout


def test_json_figures_match_the_file():
    data = inspect_json(SAMPLE)["total"]
    turns, tools = raw_counts(SAMPLE)
    assert data["assistant_turns"] == turns
    assert data["trainable_turns"] + sum(data["untrainable"].values()) == turns
    assert data["tool_calls"] == dict(tools)
    assert data["compactions"] == 1 and data["branch_points"] == 1 and data["episodes"] == 3


def test_directory_in_pi_layout_with_an_unreadable_file(tmp_path):
    project = tmp_path / "sessions" / "--home-dev-project--"
    project.mkdir(parents=True)
    for name in ("branched.jsonl", "compacted.jsonl"):
        shutil.copy(FIXTURES / name, project / f"2026-11-20T09-00-00-000Z_{name}")
    (project / "broken.jsonl").write_bytes(b"\x00\x00binary")
    data = inspect_json(tmp_path / "sessions")
    total = data["total"]
    expected = sum(raw_counts(FIXTURES / n)[0] for n in ("branched.jsonl", "compacted.jsonl"))
    assert total["files"] == 2 and total["sessions"] == 2 and total["assistant_turns"] == expected
    assert [Path(u["path"]).name for u in data["unreadable"]] == ["broken.jsonl"]
    assert total["untrainable"] == {"aborted": 1, "empty": 1, "error": 1}
    assert set(total["teacher_models"]) == {"anthropic/claude-sonnet-4-5", "openai/gpt-5"}


def test_warnings_are_counted_by_kind(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = (FIXTURES / "branched.jsonl").read_text().splitlines()
    path.write_text("\n".join(lines[:5] + ["{oops"] + lines[5:]) + "\n")
    assert inspect_json(path)["total"]["warnings"] == {"invalid_json": 1}


def test_nothing_to_read_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["tracetune", "inspect", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no session files" in err and "Traceback" not in err


def test_shared_session_has_484_assistant_turns():
    path = SHARED / "pi" / "before-compaction.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    data = inspect_json(path.parent)["total"]
    assert data["assistant_turns"] == raw_counts(path)[0] == 484
    assert data["trainable_turns"] + sum(data["untrainable"].values()) == 484


def test_inspect_does_not_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from tracetune.cli.main import app; "
        f"r = CliRunner().invoke(app, ['inspect', '--json', {str(SAMPLE)!r}]); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
