"""`tracetune run` refuses, before any training, what cannot work: an empty split, with its cause named."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from tracetune.errors import TracetuneError
from tracetune.pipeline.config import load_config
from tracetune.pipeline.manifest import read_manifest
from tracetune.pipeline.runner import Stage, run
from tracetune.pipeline.stages import check_splits, default_stages
from tracetune.prepare.summary import PrepareSummary


def session_line(i: int, long: bool = False) -> str:
    detail = " ".join(f"w{i}x{k}" for k in range(1500)) if long else ""  # no 400-token window holds this task
    return json.dumps({"messages": [
        {"role": "user", "content": f"Task {i}: explain module_{i}.py in project {i * 7} {detail}"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function",
                                                           "function": {"name": "read", "arguments": {"path": f"module_{i}.py"}}}]},
        {"role": "tool", "tool_call_id": f"c{i}", "name": "read", "content": f"def f{i}():\n    return {i}"},
        {"role": "assistant", "content": f"module_{i} returns {i}."},
    ]}) + "\n"


def test_an_empty_eval_split_is_refused_before_training_with_its_sessions_and_cause(tiny_student, tmp_path):
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(session_line(i) for i in range(6)))
    config = load_config(None, ["prepare.max_length=400", "prepare.eval_fraction=0.2"], name="t",
                         **{"student.model": str(tiny_student), "traces.paths": [str(traces)], "runs_dir": str(tmp_path / "runs")})
    stages = [s for s in default_stages() if s.name == "prepare"]
    first = run(config, stages=stages, console=Console(quiet=True))
    split = json.loads((first.run_dir / "prepare" / "split.json").read_text())
    held_out = {int(sid.rsplit(":", 1)[1]) - 1 for sid in split["eval_ids"]}
    assert held_out and len(held_out) < 6

    traces.write_text("".join(session_line(i, long=i in held_out) for i in range(6)))
    trained = []
    sweep = Stage("sweep", lambda ctx, out: trained.append(1), needs=("prepare",))
    with pytest.raises(TracetuneError) as err:
        run(config, stages=[*stages, sweep], console=Console(quiet=True))
    assert not trained
    message = f"{err.value.message} {err.value.hint}"
    assert "eval split holds 0 examples" in message and "too_long" in message and "max_length" in message
    assert "traces.jsonl" in message
    assert read_manifest(first.run_dir).stages["prepare"].status == "error"


def test_a_split_without_sessions_names_the_fix():
    stats = {"examples": {"train": {"examples": 3}, "eval": {"examples": 0}}, "sessions": [
        {"source": "a.jsonl", "split": "train", "targets": 3, "supervised": 3, "dropped_by_reason": {}, "prefix_tokens": 10}]}
    with pytest.raises(TracetuneError, match="holds no session") as err:
        check_splits(PrepareSummary.model_validate(stats), 1024)
    assert "eval_fraction" in err.value.hint


def test_a_live_loop_that_cannot_run_is_refused_before_any_stage(tmp_path, monkeypatch):
    """Asking for bubblewrap where there is none fails at once, naming the config key, with nothing run."""
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no bwrap to be found
    config = tmp_path / "run.toml"
    config.write_text(f'name = "t"\nruns_dir = "{tmp_path / "runs"}"\n[traces]\npaths = ["{tmp_path}"]\n'
                      '[eval.live]\nsandbox = "bwrap"\n')
    res = CliRunner().invoke(app, ["run", str(config)])
    assert res.exit_code != 0
    assert isinstance(res.exception, TracetuneError) and "eval.live.sandbox" in res.exception.message
    assert not (tmp_path / "runs").exists()
