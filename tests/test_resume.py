"""A training process killed after a checkpoint resumes to the same step count and result."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train_data import PI_TRACE, shared_pi_dataset  # noqa: E402

from tracetune.errors import TracetuneError  # noqa: E402
from tracetune.train.config import TrainConfig  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not PI_TRACE.exists(), reason="shared pi trace absent"),
    pytest.mark.usefixtures("one_torch_thread"),
]

KILL_AT = 4

# Trains in a child process and SIGKILLs itself right after the checkpoint at step KILL_AT is written.
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from transformers import TrainerCallback
    from tracetune.train.config import TrainConfig
    from tracetune.train.trainer import train

    class Die(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == int(sys.argv[4]):
                os.kill(os.getpid(), signal.SIGKILL)

    config = TrainConfig(**json.loads(sys.argv[1]))
    if sys.argv[4] == "resume":
        train(config, sys.argv[2], sys.argv[3], resume=True)
    else:
        train(config, sys.argv[2], sys.argv[3], callbacks=[Die()])
    """
)


def config_for(student, **overrides) -> TrainConfig:
    base = dict(model=str(student), lr=5e-3, max_steps=10, save_steps=KILL_AT, per_device_batch_size=1,
                grad_accumulation=1, max_length=512, logging_steps=2, lora_r=4, warmup_ratio=0.0)
    return TrainConfig(**(base | overrides))


@pytest.fixture(scope="module")
def pi_data(tiny_student, tmp_path_factory):
    return shared_pi_dataset(tiny_student, tmp_path_factory)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_end(tiny_student, pi_data, tmp_path):
    from tracetune.train.trainer import train

    killed = tmp_path / "killed"
    config = config_for(tiny_student)
    env = {k: v for k, v in os.environ.items() if k != "TRACKIO_DIR"} | {"OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, config.model_dump_json(), str(pi_data), str(killed), str(KILL_AT)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert not (killed / "adapter").exists()
    assert (killed / "checkpoints" / f"checkpoint-{KILL_AT}").is_dir()
    assert (killed / "trackio").is_dir(), "Trackio should log inside the run folder"

    # resume in a fresh process too: Trackio keeps the folder it saw first in a process, and
    # writes in the background, so only a process that ends cleanly has flushed every line
    done = subprocess.run(
        [sys.executable, "-c", CHILD, config.model_dump_json(), str(pi_data), str(killed), "resume"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["resumed_from"].endswith(f"checkpoint-{KILL_AT}")
    assert resumed["global_step"] == 10
    assert (killed / "adapter" / "adapter_model.safetensors").exists()
    logged = set()
    with sqlite3.connect(killed / "trackio" / "tracetune.db") as db:
        for (blob,) in db.execute("select metrics from metrics"):
            logged |= set(json.loads(blob))
    assert {"train/loss", "train/tokens_per_second", "train/mean_token_accuracy", "eval/loss", "eval/mean_token_accuracy"} <= logged

    straight = train(config_for(tiny_student, report_to="none"), pi_data, tmp_path / "straight")
    assert straight.global_step == resumed["global_step"]
    assert resumed["metrics"]["eval_loss"] == pytest.approx(straight.metrics["eval_loss"], abs=1e-3)
    assert resumed["metrics"]["eval_loss_before"] == pytest.approx(straight.metrics["eval_loss_before"], abs=1e-6)


def test_checkpoints_without_resume_are_refused(tiny_student, tmp_path):
    from tracetune.train.trainer import train

    (tmp_path / "out" / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    with pytest.raises(TracetuneError) as info:
        train(config_for(tiny_student), tmp_path / "data", tmp_path / "out")
    assert "--resume" in info.value.hint


def test_resume_with_a_changed_config_is_refused(tiny_student, tmp_path):
    from tracetune.train.trainer import train

    out = tmp_path / "out"
    (out / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (out / "train_config.json").write_text(json.dumps({"config": config_for(tiny_student).model_dump(mode="json")}))
    with pytest.raises(TracetuneError, match="learning_rate"):
        train(config_for(tiny_student, lr=1e-4), tmp_path / "data", out, resume=True)


def test_a_checkpoint_saved_before_a_field_existed_resumes_when_the_field_keeps_its_default(tiny_student, tmp_path):
    from tracetune.train.trainer import _check_same_config

    config = config_for(tiny_student)
    saved = config.model_dump(mode="json")
    del saved["hub_kernels"]  # a checkpoint written before [train] hub_kernels existed
    (tmp_path / "train_config.json").write_text(json.dumps({"config": saved}))
    _check_same_config(tmp_path, config)
    with pytest.raises(TracetuneError, match="hub_kernels"):
        _check_same_config(tmp_path, config.model_copy(update={"hub_kernels": True}))
