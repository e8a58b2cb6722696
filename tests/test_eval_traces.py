"""`tracetune eval --run RUN --traces PATH`: a finished run scored on sessions given now, all held out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from test_fidelity import scripted_open  # noqa: E402
from test_prepare_stage import write_messages  # noqa: E402

from tracetune.errors import TracetuneError
from tracetune.eval.backends import BackendSet
from tracetune.pipeline.config import load_config
from tracetune.pipeline.manifest import Manifest, write_manifest


@pytest.fixture()
def finished_run(tiny_student, tmp_path) -> Path:
    """A run folder as `tracetune run` leaves it, as far as eval needs: manifest, student, selected adapter."""
    run = tmp_path / "runs" / "mine"
    config = load_config(None, ["prepare.max_length=1024", "eval.max_samples=6"], name="mine",
                         **{"student.model": "tiny", "runs_dir": str(tmp_path / "runs")})
    manifest = Manifest(name="mine")
    manifest.config = config.model_dump(mode="json")
    run.mkdir(parents=True)
    write_manifest(run, manifest)
    shutil.copytree(tiny_student, run / "student")
    adapter = run / "sweep" / "variants" / "v1" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(run / "student")}))
    (run / "sweep" / "selection.json").write_text(json.dumps({"winner": "v1"}))
    return run


def test_a_run_is_scored_on_new_sessions_prepared_with_its_settings(finished_run, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    backends: dict = {}
    monkeypatch.setattr(BackendSet, "open", lambda self, role: scripted_open(backends)(role))
    traces = write_messages(tmp_path / "this-week.jsonl", sessions=5)
    before = traces.read_bytes()
    res = CliRunner().invoke(app, ["eval", "--run", str(finished_run), "--traces", str(traces), "--max-samples", "8"])
    assert res.exit_code == 0, res.output
    assert "majority-tool floor (always 'read')" in res.output and "per teacher action" in res.output
    (out,) = (finished_run / "evals").iterdir()
    stats = json.loads((out / "prepared" / "prepare_stats.json").read_text())
    assert stats["split"] == {"train_sessions": 0, "eval_sessions": 5, "warning": None}
    assert json.loads((out / "prepared" / "student.json").read_text())["max_length"] == 1024  # the run's setting
    results = json.loads((out / "results.json").read_text())
    fidelity = results["fidelity"]
    assert len(fidelity["sample_ids"]) == 8 and results["settings"]["config"]["max_samples"] == 8
    assert fidelity["floor"]["tool"] == "read" and fidelity["floor"]["tool_match"]["n"] >= 1
    assert set(fidelity["models"]) == {"base", "tuned"} and (out / "report.html").is_file()
    assert len(backends["base"].seen) == len(backends["tuned"].seen) == 8
    assert traces.read_bytes() == before


def test_eval_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    from tracetune.pipeline.eval_traces import evaluate_run

    with pytest.raises(TracetuneError, match="not a tracetune run"):
        evaluate_run(tmp_path, [tmp_path / "x.jsonl"])
