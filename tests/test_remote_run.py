"""`tracetune run --on hf-jobs`: the example config, the dry run, and the job worker end to end.

The worker really trains (tiny student, two steps) and really uploads, to a
local stand-in of the Hub HTTP API (tests/hubstub.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hubstub import HubStub
from tracetune.pipeline.config import load_config
from tracetune.remote.config import JobsConfig
from tracetune.remote.run import run_remote
from tracetune.pipeline.remote_stage import remote_inputs, run_worker

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gemma4-e2b-pi-mono.toml"
SAMPLE = ROOT / "src" / "tracetune" / "data" / "sample_pi_session.jsonl"
TOKEN = "hf_CANARYworkerTOKEN1234567890ab"


def test_example_config_validates_and_keeps_the_recipe_shape():
    cfg = load_config(EXAMPLE)
    assert cfg.student.model == "google/gemma-4-E2B-it"
    assert cfg.traces.paths == ["hf://datasets/badlogicgames/pi-mono"]
    assert sorted(cfg.sweep.grid.lr) == [1e-4, 2e-4] and sorted(cfg.sweep.grid.lora_r) == [16, 32]
    assert cfg.sweep.rule.metric == "eval_loss" and cfg.sweep.rule.direction == "min"
    assert cfg.prepare.max_length == 4096 and cfg.jobs.flavor == "a100-large"


def test_dry_run_cli_prints_a_spec_offline(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_TOKEN": TOKEN}
    done = subprocess.run(
        [sys.executable, "-m", "tracetune.cli.main", "run", str(EXAMPLE), "--on", "hf-jobs", "--dry-run",
         "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "flavor          a100-large" in out and "tracetune job-worker --repo" in out
    assert "inputs/config.json" in out and "nothing was uploaded or submitted" in out
    assert TOKEN not in out + done.stderr
    assert not (tmp_path / "runs" / "gemma4-e2b-pi-mono" / "remote_job.json").exists()


def test_dry_run_refuses_a_local_student_folder(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tracetune.cli.main", "run", str(EXAMPLE), "--on", "hf-jobs", "--dry-run",
         "--student", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and "cannot read" in done.stderr


@pytest.mark.slow
def test_worker_trains_and_the_client_pulls_the_outputs_back(tmp_path, tiny_student, monkeypatch):
    from huggingface_hub import HfApi

    from tracetune.prepare.stage import prepare

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    cfg = load_config(None, overrides=[
        "name=demo", f"runs_dir={json.dumps(str(tmp_path / 'runs'))}", "train.max_steps=2", "train.report_to=none",
        "train.max_length=2048", "sweep.grid.lr=[1e-3]", "sweep.grid.lora_r=[4]", "train.save_steps=1",
        "sweep.rule.metric=train_loss",  # the bundled sample is one session family: no held-out split
    ])
    run_dir = cfg.run_dir()
    prepared = run_dir / "prepare"
    prepare(cfg.prepare.model_copy(update={"student": str(tiny_student), "max_length": 2048}), [SAMPLE], prepared)
    with HubStub(token=TOKEN) as hub:
        api = HfApi(endpoint=hub.endpoint, token=TOKEN)
        hub.on_job_complete = lambda job: run_worker("alice/tracetune-demo", tmp_path / "job", api=api)
        result = run_remote(
            JobsConfig(install="pypi", poll_seconds=0.01), run_name="demo", run_dir=run_dir,
            config_file=remote_inputs(cfg, run_dir), prepared_dir=prepared, api=api, print_fn=lambda _l: None,
            environ={"HF_TOKEN": TOKEN}, sleep=lambda _s: None,
        )
        files = hub.repos["alice/tracetune-demo"].files
    assert result.final_stage == "COMPLETED"
    assert "outputs/selection.json" in files and not any("checkpoint" in name for name in files)
    selection = json.loads((result.outputs / "selection.json").read_text())
    winner = selection["winner"]
    assert (result.outputs / "variants" / winner / "adapter" / "adapter_model.safetensors").exists()
    assert json.loads((tmp_path / "job" / "inputs" / "config.json").read_text())["name"] == "demo"
