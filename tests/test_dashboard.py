"""`tracetune dashboard RUN` serves the run's Trackio data at 127.0.0.1; metrics are logged at the optimizer step.

Trackio reads ``TRACKIO_DIR`` once, when first imported, so everything that
imports it here runs in a subprocess (this test process never does).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from tracetune.errors import TracetuneError
from tracetune.train.tracking import locate, step_trackio_class


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _trackio_data(folder: Path, project: str) -> None:
    code = (f"import trackio; trackio.init(project={project!r}, name='v1'); "
            "[trackio.log({'loss': 1.0 / s}, step=s) for s in (2, 4)]; trackio.finish()")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "TRACKIO_DIR": str(folder)}, check=True,
                   capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "my-run"
    _trackio_data(run / "sweep" / "trackio", "agent-proj")
    (run / "manifest.json").write_text(json.dumps({"config": {"train": {"trackio_project": "agent-proj"}}}))
    return run


def test_locate_reads_the_runs_project(run_dir, tmp_path):
    data = locate(run_dir)
    assert data.folder == (run_dir / "sweep" / "trackio").resolve() and data.project == "agent-proj"
    with pytest.raises(TracetuneError, match="holds no Trackio data"):
        locate(tmp_path)


def test_dashboard_starts_prints_the_url_and_stops(run_dir):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tracetune.cli.main", "dashboard", str(run_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        line, deadline = "", time.monotonic() + 90
        while "Trackio dashboard:" not in line and time.monotonic() < deadline and proc.poll() is None:
            if selector.select(timeout=1):
                line = proc.stdout.readline()
        assert line.strip() == f"Trackio dashboard: http://127.0.0.1:{port}/?project=agent-proj", (line, proc.poll())
        with urllib.request.urlopen(line.split(": ", 1)[1].strip(), timeout=30) as page:
            assert page.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with pytest.raises(OSError):  # stopped with the command: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_step_callback_logs_at_the_optimizer_step():
    calls = []
    fake = SimpleNamespace(log=lambda metrics, step=None: calls.append((metrics, step)))
    cls = step_trackio_class()
    callback = cls.__new__(cls)  # __init__ would import trackio into this process
    callback._trackio, callback._initialized = fake, True
    state = SimpleNamespace(global_step=7, is_world_process_zero=True)
    callback.on_log(None, state, None, logs={"loss": 0.5})
    callback.on_predict(None, state, None, metrics={"eval_loss": 0.25})
    assert [step for _, step in calls] == [7, 7] and calls[0][0]["train/loss"] == 0.5
    assert callback._trackio is fake


@pytest.mark.slow
def test_a_training_run_logs_trackio_steps_as_optimizer_steps(tiny_student, tmp_path):
    """A real 4-step train reporting to Trackio (in a subprocess): every row's step is an optimizer step."""
    script = textwrap.dedent(f"""
        from datasets import Dataset, DatasetDict
        from tracetune.train.config import TrainConfig
        from tracetune.train.trainer import train
        rows = [{{"input_ids": [1, 2, 3, 4], "assistant_masks": [0, 1, 1, 1]}}] * 4
        DatasetDict({{"train": Dataset.from_list(rows), "eval": Dataset.from_list(rows)}}).save_to_disk({str(tmp_path / "d" / "dataset")!r})
        config = TrainConfig(model={str(tiny_student)!r}, max_steps=4, max_length=16, lora_r=2, logging_steps=2,
                             eval_steps=2, save_steps=4, trackio_project="steps", per_device_train_batch_size=1,
                             gradient_accumulation_steps=2)
        train(config, {str(tmp_path / "d")!r}, {str(tmp_path / "out")!r})
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRACKIO_DIR"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, timeout=300)
    with sqlite3.connect(tmp_path / "out" / "trackio" / "steps.db") as db:
        rows = [(step, json.loads(m)) for step, m in db.execute("select step, metrics from metrics order by id")]
    losses = [step for step, m in rows if "train/loss" in m]
    evals = [step for step, m in rows if "eval/loss" in m]
    assert losses[-2:] == [2, 4] and evals[:1] == [0] and set(evals) <= {0, 2, 4}  # not Trackio's log counter
    assert all(m["train/global_step"] == step for step, m in rows if "train/global_step" in m)
