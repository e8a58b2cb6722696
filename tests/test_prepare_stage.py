"""``prepare`` end to end: the dataset contract, privacy before writing, families apart, the report."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tracetune.conversation.wire import episode_from_wire
from tracetune.errors import TracetuneError
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.stage import prepare

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
PI_TRACE = SHARED / "pi" / "before-compaction.jsonl"
SECRET = "ghp_" + "Zq8rT2vW9xY4bN6mK1pL3sD5fG7hJ0aQ2wE4"


def write_messages(path: Path, sessions: int = 12) -> Path:
    """A messages JSONL of distinct small agent conversations; one tool result holds a secret."""
    lines = []
    for i in range(sessions):
        result = f"export GITHUB_TOKEN={SECRET}" if i == 3 else f"def f{i}():\n    return {i}"
        lines.append(
            {
                "messages": [
                    {"role": "user", "content": f"Task {i}: explain module_{i}.py in project {i * 7}"},
                    {"role": "assistant", "content": f"Reading module_{i}.", "tool_calls": [{"id": f"c{i}", "type": "function", "function": {"name": "read", "arguments": {"path": f"module_{i}.py"}}}]},
                    {"role": "tool", "tool_call_id": f"c{i}", "name": "read", "content": result},
                    {"role": "assistant", "content": f"module_{i} defines f{i}, which returns {i}."},
                ]
            }
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def prepared(tiny_student, tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    traces = write_messages(root / "traces.jsonl")
    before = hashlib.sha256(traces.read_bytes()).hexdigest()
    config = PrepareConfig(student=str(tiny_student), eval_fraction=0.25, system_prompt="You are a careful agent.")
    result = prepare(config, [traces], root / "out")
    assert hashlib.sha256(traces.read_bytes()).hexdigest() == before  # input untouched
    return result


def test_dataset_contract(prepared):
    from datasets import load_from_disk

    dd = load_from_disk(str(prepared.dataset_dir))
    assert set(dd) == {"train", "eval"}
    assert len(dd["eval"]) >= 1 and len(dd["train"]) >= 6
    for split in dd.values():
        for row in split:
            assert len(row["input_ids"]) == len(row["assistant_masks"]) == row["num_tokens"]
            assert sum(row["assistant_masks"]) == row["num_supervised"] > 0
            messages = json.loads(row["messages"])
            assert messages[0] == {"role": "system", "content": "You are a careful agent."}
            assert json.loads(row["tools"])[0]["function"]["name"] == "read"
    for name in ("prepare_stats.json", "redaction_report.json", "report.html", "tools.json", "split.json", "student.json"):
        assert (prepared.out_dir / name).is_file(), name
    assert not list(prepared.out_dir.parent.glob(".out.tmp-*"))


def test_episodes_files_read_back_and_families_do_not_cross(prepared):
    from datasets import load_from_disk

    dd = load_from_disk(str(prepared.dataset_dir))
    ids = {}
    for name in ("train", "eval"):
        lines = (prepared.out_dir / f"{name}_episodes.jsonl").read_text().splitlines()
        records = [json.loads(x) for x in lines]
        for record in records:
            episode, tools, system = episode_from_wire(record)
            assert system == "You are a careful agent." and tools and episode.target_indices
        ids[name] = {r["tracetune"]["session_id"] for r in records}
        assert ids[name] == set(dd[name]["session_id"])
    assert ids["train"] and ids["eval"] and not ids["train"] & ids["eval"]
    assert not set(dd["train"]["family_id"]) & set(dd["eval"]["family_id"])


def test_stats_count_every_turn(prepared):
    stats = json.loads((prepared.out_dir / "prepare_stats.json").read_text())
    assert stats["turns"]["trainable"] == 24
    assert stats["turns"]["supervised"] + sum(stats["turns"]["dropped_by_reason"].values()) == 24
    assert stats["turns"]["kept_fraction"] == 1.0
    assert stats["tool_calls_supervised"] == {"read": 12}
    assert stats["read"]["sessions"] == 12
    student = json.loads((prepared.out_dir / "student.json").read_text())
    assert student["tokenizer_class"] and student["chat_template_sha256"]
    assert (student["max_length"], student["head_user_chars"]) == (4096, 4000)  # the defaults eval windows with


def test_secret_is_redacted_before_anything_is_written(prepared):
    for path in prepared.out_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert "REDACTED" in (prepared.out_dir / "train_episodes.jsonl").read_text() + (prepared.out_dir / "eval_episodes.jsonl").read_text()


def test_report_highlights_supervised_tokens(prepared):
    html = (prepared.out_dir / "report.html").read_text()
    assert '<span class="s">' in html and "<svg" in html and "tokens forwarded per supervised token" in html
    assert "Reading module_" in html


def test_stats_and_report_give_each_sessions_split_turns_and_prefix(prepared):
    stats = prepared.stats
    sessions = [s.model_dump() for s in stats.sessions]
    assert len(sessions) == 12 and {s["split"] for s in sessions} == {"train", "eval"}
    assert sum(s["supervised"] for s in sessions) == stats.turns.supervised
    prefix = stats.prefix_tokens_by_agent["messages"]
    assert 0 < prefix.min <= prefix.median <= prefix.max == max(s["prefix_tokens"] for s in sessions)
    html = (prepared.out_dir / "report.html").read_text()
    assert 'id="sessions"' in html and "prefix tokens" in html


def test_a_prefix_over_a_quarter_of_max_length_is_warned_with_the_fix():
    from tracetune.prepare.stage import prefix_warnings

    from tracetune.prepare.summary import PrepareSummary

    summary = PrepareSummary.model_validate(
        {"prefix_tokens_by_agent": {"pi": {"sessions": 2, "min": 600, "median": 700, "max": 1435}}})
    (warning,) = prefix_warnings(summary, 2048)
    assert "pi" in warning and "1,435" in warning and "max_length" in warning and "tools_file" in warning
    assert prefix_warnings(summary, 8192) == []


def test_refuses_to_replace_a_folder_it_did_not_write(tiny_student, tmp_path):
    traces = write_messages(tmp_path / "t.jsonl", 2)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(TracetuneError, match="refusing"):
        prepare(PrepareConfig(student=str(tiny_student)), [traces], tmp_path / "mine")
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep"


def test_cli_prepare_prints_a_summary(tiny_student, tmp_path):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    traces = write_messages(tmp_path / "t.jsonl", 4)
    result = CliRunner().invoke(app, ["prepare", str(traces), "--student", str(tiny_student), "--out", str(tmp_path / "o"), "--strategy", "per-turn"])
    assert result.exit_code == 0, result.output
    assert "turns supervised" in result.output and "8/8 trainable turns kept" in result.output
    assert (tmp_path / "o" / "dataset" / "dataset_dict.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(not PI_TRACE.exists(), reason="shared pi trace not present")
def test_real_pi_session(tiny_student, tmp_path):
    copy = tmp_path / "pi" / PI_TRACE.name
    copy.parent.mkdir()
    shutil.copy(PI_TRACE, copy)
    result = prepare(PrepareConfig(student=str(tiny_student), max_length=4096), [copy], tmp_path / "out")
    turns = result.stats.turns.model_dump()
    assert turns["trainable"] > 400
    assert turns["kept_fraction"] >= 0.95
    assert result.stats.windowed_episodes >= 1
    assert result.stats.examples["train"].max_tokens <= 4096
    assert "/Users/badlogic" not in (tmp_path / "out" / "train_episodes.jsonl").read_text()


def test_report_screenshot_when_chromium_is_present(prepared, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed")
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
         (prepared.out_dir / "report.html").as_uri()],
        check=True, capture_output=True, timeout=60,
    )
    assert shot.stat().st_size > 10_000


def test_a_long_one_line_system_prompt_is_text_not_a_path(tmp_path):
    long = "You are a coding agent. " * 20  # longer than a file name may be
    assert PrepareConfig(student="x", system_prompt=long).resolved_system_prompt() == long
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("From a file.", encoding="utf-8")
    assert PrepareConfig(student="x", system_prompt=str(prompt_file)).resolved_system_prompt() == "From a file."
