"""A directory holding pi, Claude Code, Codex and messages sessions reads in one call, format per file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tracetune.errors import TracetuneError
from tracetune.readers import read_paths
from tracetune.readers.registry import READERS, detect_format

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"


@pytest.fixture
def mixed(tmp_path) -> Path:
    """pi, Claude Code and Codex in the layouts the agents use, plus a converted dataset."""
    root = tmp_path / "traces"
    layout = {
        "pi/--repo--/branched.jsonl": FIXTURES / "pi" / "branched.jsonl",
        "claude/projects/-repo/sess-split.jsonl": FIXTURES / "claude_code" / "split.jsonl",
        "claude/projects/-repo/sess-side.jsonl": FIXTURES / "claude_code" / "sidechain.jsonl",
        "codex/sessions/2026/05/01/rollout-basic.jsonl": FIXTURES / "codex" / "basic.jsonl",
        "codex/sessions/2026/05/02/rollout-compacted.jsonl": FIXTURES / "codex" / "compacted.jsonl",
        "datasets/records.jsonl": FIXTURES / "messages" / "records.jsonl",
    }
    for rel, src in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    return root


def test_pi_stays_first_in_detection_order():
    assert list(READERS)[0] == "pi"
    assert {"claude-code", "codex", "messages"} <= set(READERS)


def test_one_call_reads_every_agent_with_the_format_of_each_file(mixed):
    result = read_paths([mixed])
    assert result.errors == []
    formats = {Path(p).relative_to(mixed).parts[0]: f for p, f in result.formats.items()}
    assert formats == {"pi": "pi", "claude": "claude-code", "codex": "codex", "datasets": "messages"}
    by_agent: dict[str, int] = {}
    for s in result.sessions:
        by_agent[s.agent] = by_agent.get(s.agent, 0) + 1
    assert by_agent == {"pi": 1, "claude-code": 2, "codex": 2, "messages": 4}
    assert all(s.trainable_turns > 0 for s in result.sessions)


def test_reading_a_directory_changes_no_file(mixed):
    files = sorted(p for p in mixed.rglob("*") if p.is_file())
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    read_paths([mixed])
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in files] == before
    assert sorted(p for p in mixed.rglob("*") if p.is_file()) == files


def test_format_can_be_forced(mixed):
    cc_file = next(mixed.glob("claude/projects/-repo/sess-split.jsonl"))
    assert detect_format(cc_file) == "claude-code"
    forced = read_paths([cc_file], fmt="codex")
    assert forced.formats == {str(cc_file): "codex"}
    (session,) = forced.sessions
    assert session.agent == "codex" and session.trainable_turns == 0
    assert {w.kind for w in session.warnings} == {"unknown_entry"}  # every line, counted
    with pytest.raises(TracetuneError):
        read_paths([cc_file], fmt="no-such-format")


def test_inspect_shows_figures_per_agent(mixed):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    out = CliRunner().invoke(app, ["inspect", "--json", "--sidechains", "context", str(mixed)])
    assert out.exit_code == 0, out.output
    figures = json.loads(out.stdout)
    agents = figures["by_agent"]
    assert set(agents) == {"pi", "claude-code", "codex", "messages"}
    # split.jsonl: 3 turns; sidechain.jsonl: 2 main turns + 2 sidechain turns (context only)
    assert agents["claude-code"]["assistant_turns"] == 7
    assert agents["claude-code"]["trainable_turns"] == 5
    assert agents["claude-code"]["untrainable"] == {"sidechain": 2}
    # basic.jsonl: 3 turns; compacted.jsonl: 5 turns (the copy in replacement_history is "seen")
    assert agents["codex"]["trainable_turns"] == 8
    assert figures["total"]["sessions"] == 9


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared traces absent")
def test_the_shared_traces_read_together_without_errors():
    result = read_paths([SHARED])
    assert result.errors == []
    assert set(result.formats.values()) >= {"pi", "claude-code", "codex"}
    for session in result.sessions:
        if session.agent in ("claude-code", "codex"):
            assert session.warnings == ()


@pytest.mark.slow
def test_prepare_takes_the_mixed_directory_in_one_call(mixed, tiny_student, tmp_path):
    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import prepare

    result = prepare(PrepareConfig(student=str(tiny_student), max_length=1024, eval_fraction=0.0), [mixed],
                     tmp_path / "prepared")
    tools = json.loads((result.out_dir / "tools.json").read_text())
    assert {"claude-code", "codex", "pi", "messages"} <= set(tools["agents"])
    codex_tools = {t["function"]["name"] for t in tools["agents"]["codex"]["tools"]}
    assert {"exec_command", "apply_patch"} <= codex_tools  # Codex's own built-in schemas
    rows = [json.loads(line) for line in (result.out_dir / "train_episodes.jsonl").read_text().splitlines()]
    agents = {r.get("tracetune", {}).get("agent") for r in rows}
    assert {"pi", "claude-code", "codex"} <= agents
