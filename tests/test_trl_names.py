"""TRL's option names in configs and flags; the former names still read, with a warning; help texts intact."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tracetune.cli.main import app
from tracetune.errors import ConfigError, TracetuneError
from tracetune.pipeline.config import EXAMPLE_CONFIG, load_config, validate_config
from tracetune.pipeline.init_config import CPU_TRAIN
from tracetune.sweep.config import SweepConfig, load_sweep_config
from tracetune.sweep.variants import expand
from tracetune.train.config import DEPRECATED_NAMES, DeprecatedOption, TrainConfig, load_train_config

ROOT = Path(__file__).resolve().parents[1]
FORMER = {"lr": 1e-3, "lr_scheduler": "linear", "epochs": 2.0, "per_device_batch_size": 2, "grad_accumulation": 3}
NEW = {"learning_rate": 1e-3, "lr_scheduler_type": "linear", "num_train_epochs": 2.0,
       "per_device_train_batch_size": 2, "gradient_accumulation_steps": 3}


def test_former_names_read_with_a_warning_each():
    with pytest.warns(DeprecatedOption) as caught:
        former = TrainConfig(model="m", **FORMER)
    assert len(caught) == len(FORMER) and "learning_rate" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecatedOption)
        new = TrainConfig(model="m", **NEW)
    assert former == new and set(NEW) <= set(new.model_dump()) and not set(FORMER) & set(new.model_dump())
    assert (new.lr, new.epochs, new.grad_accumulation) == (1e-3, 2.0, 3)  # read-only former names for old code


def test_a_name_and_its_former_name_together_are_refused():
    with pytest.raises(ValueError, match="give learning_rate only"):
        TrainConfig(model="m", lr=1e-3, learning_rate=2e-3)


def test_run_config_old_file_new_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[train]\nlr = 1e-4\ngrad_accumulation = 2\n[sweep.grid]\nlr = [1e-4, 2e-4]\n")
    with pytest.warns(DeprecatedOption):
        config = load_config(path, ["train.learning_rate=3e-4", "sweep.grid.lr=[5e-4]"])
    assert config.train.learning_rate == 3e-4 and config.train.gradient_accumulation_steps == 2
    assert config.sweep.grid.learning_rate == [5e-4]
    dumped = config.model_dump(mode="json")
    assert "lr" not in dumped["train"] and "lr" not in dumped["sweep"]["grid"]


def test_a_dumped_config_with_former_names_validates(tmp_path):
    """A manifest written before the rename (eval --run reads it back) has no 'unknown key'."""
    old = {"name": "r", "train": {"model": "tiny", "lr": 2e-4, "epochs": 1.0}, "sweep": {"grid": {"lr": [1e-4]}}}
    old["student"] = {"model": "tiny"}
    del old["train"]["model"]
    with pytest.warns(DeprecatedOption):
        config = validate_config(old)
    assert config.train.learning_rate == 2e-4 and config.sweep.grid.learning_rate == [1e-4]


def test_sweep_grid_and_tie_break_former_names():
    with pytest.warns(DeprecatedOption):
        sweep = SweepConfig(grid={"lr": [1e-4, 2e-4]}, rule={"tie_break": ["lr", "name"]})
    assert sweep.grid.learning_rate == [1e-4, 2e-4] and sweep.rule.tie_break == ["learning_rate", "name"]
    variants = expand(sweep, TrainConfig(model="m"))
    assert [v.name for v in variants] == ["lr1e-4-r16-len4k", "lr2e-4-r16-len4k"]  # folder names unchanged
    assert variants[1].apply(TrainConfig(model="m")).learning_rate == 2e-4
    assert variants[0].params() == {"learning_rate": 1e-4, "lora_r": 16, "max_length": 4096}


def test_sweep_flag_replaces_the_files_rates_under_either_name(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[sweep.grid]\nlr = [1e-4]\n")
    assert load_sweep_config(path, learning_rate=[3e-4]).grid.learning_rate == [3e-4]
    assert load_sweep_config(path, lr=[4e-4]).grid.learning_rate == [4e-4]


def test_train_config_file_with_former_names_and_new_flags(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[train]\nmodel = "m"\nlr = 1e-4\nepochs = 3\n')
    with pytest.warns(DeprecatedOption):
        config = load_train_config(path, learning_rate=5e-4)
    assert (config.learning_rate, config.num_train_epochs) == (5e-4, 3.0)


def test_resume_accepts_a_train_config_json_written_under_former_names(tmp_path):
    from tracetune.train.trainer import _check_same_config

    config = TrainConfig(model="m", learning_rate=1e-3)
    saved = {k: v for k, v in config.model_dump(mode="json").items()}
    for old, new in DEPRECATED_NAMES.items():
        saved[old] = saved.pop(new)
    (tmp_path / "train_config.json").write_text(json.dumps({"config": saved}))
    _check_same_config(tmp_path, config)
    with pytest.raises(TracetuneError, match="learning_rate"):
        _check_same_config(tmp_path, TrainConfig(model="m", learning_rate=2e-3))


@pytest.mark.parametrize("path", [EXAMPLE_CONFIG, *sorted((ROOT / "examples").glob("*.toml"))], ids=lambda p: p.name)
def test_shipped_configs_use_the_new_names(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecatedOption)
        load_config(path)


def test_init_cpu_keys_are_train_fields():
    assert {key for key, _, _ in CPU_TRAIN} <= set(TrainConfig.model_fields)


def test_train_flags_new_names_and_hidden_former_ones(monkeypatch, tmp_path):
    import tracetune.train.trainer as trainer

    seen = {}

    def fake_train(cfg, dataset, out, resume=False, on_progress=None):
        seen["config"] = cfg
        raise TracetuneError("stop here")

    monkeypatch.setattr(trainer, "train", fake_train)
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "m",
                              "--learning-rate", "1e-3", "--num-train-epochs", "2", "--per-device-train-batch-size", "2",
                              "--gradient-accumulation-steps", "3", "--lr-scheduler-type", "linear"])
    assert "stop here" in str(res.exception)
    assert seen["config"].model_dump(include=set(NEW)) == NEW
    res = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "m",
                              "--lr", "1e-3", "--epochs", "2", "--batch-size", "2", "--grad-accumulation", "3"])
    assert "stop here" in str(res.exception) and seen["config"].gradient_accumulation_steps == 3
    res = runner.invoke(app, ["train", str(tmp_path), "--out", "o", "--lr", "1e-3", "--learning-rate", "2e-3"])
    assert isinstance(res.exception, TracetuneError) and "give only --learning-rate" in str(res.exception)
    shown = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "100"}).output
    assert "--learning-rate" in shown and "--gradient-accumulation-steps" in shown
    assert not re.search(r"--lr(?![\w-])|--epochs|--batch-size|--grad-accumulation(?![\w-])", shown)


# --- help texts ------------------------------------------------------------------------------------------


def _commands():
    group = typer.main.get_command(app)
    return sorted(group.commands.items())


@pytest.mark.parametrize("width", ["80", "120"])
def test_help_texts_keep_bracketed_names_and_whole_option_names(width):
    runner = CliRunner()
    for name, command in _commands():
        out = runner.invoke(app, [name, "--help"], env={"COLUMNS": width})
        assert out.exit_code == 0, out.output
        text = " ".join(out.output.split())  # wrapped lines joined
        written = [command.help or ""] + [p.help or "" for p in command.params if not getattr(p, "hidden", False)]
        for token in {t for h in written for t in re.findall(r"\[[A-Za-z_.]+\]", h)}:
            assert token in text, f"`tracetune {name} --help` lost {token}"
        for param in command.params:
            if not getattr(param, "hidden", False):
                for opt in param.opts:
                    assert opt in out.output, f"`tracetune {name} --help` cut {opt}"
        assert "…" not in out.output and "<bool>" not in out.output, out.output


def test_run_help_example_is_a_valid_override():
    shown = " ".join(CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output.split())
    example = re.search(r"--set (\S+=\S+)", shown)
    assert example, shown
    assert load_config(None, [example.group(1)])  # accepted, not "unknown key"


def test_help_mentions_no_unknown_config_key():
    with pytest.raises(ConfigError):
        load_config(None, ["sweep.max_steps=20"])  # what the help used to suggest
