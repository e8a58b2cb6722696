"""Defaults shown in --help come from the config models (one source), and prepare's flags fall back to them."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from tracetune.cli.defaults import fill
from tracetune.cli.main import app


def _help(command: str) -> str:
    return " ".join(CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output.split())


def test_help_shows_the_config_models_defaults():
    from tracetune.prepare.config import PrepareConfig
    from tracetune.train.config import TrainConfig

    train, prepare = _help("train"), _help("prepare")
    assert f"Peak learning rate ({TrainConfig.model_fields['learning_rate'].default})" in train
    assert f"Forward passes per optimizer step ({TrainConfig.model_fields['gradient_accumulation_steps'].default})" in train
    assert f"Longest example in tokens ({PrepareConfig().max_length})" in prepare
    assert f"never; {PrepareConfig().clip_tool_result_chars})" in prepare
    assert "{train." not in train and "{prepare." not in prepare


def test_a_changed_default_changes_the_help(monkeypatch):
    from tracetune.prepare.config import PrepareConfig

    monkeypatch.setattr(PrepareConfig.model_fields["max_length"], "default", 1234)
    assert fill("tokens ({prepare.max_length}), seed {train.seed}") == "tokens (1234), seed 0"
    assert fill("no placeholder") == "no placeholder"


def test_prepare_without_flags_takes_the_config_defaults(tmp_path, monkeypatch):
    import tracetune.prepare.stage as stage

    seen = {}

    def fake(config, traces, out, **_):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(stage, "prepare", fake)
    CliRunner().invoke(app, ["prepare", str(tmp_path), "--student", "s", "--out", str(tmp_path / "o")])
    from tracetune.prepare.config import PrepareConfig

    defaults = PrepareConfig(student="s")
    assert seen["config"].model_dump() == defaults.model_dump()
    CliRunner().invoke(app, ["prepare", str(tmp_path), "--student", "s", "--out", str(tmp_path / "o"),
                             "--clip-tool-results", "0", "--max-length", "512"])
    assert seen["config"].clip_tool_result_chars is None and seen["config"].max_length == 512


def test_the_cli_starts_without_loading_the_configs():
    code = "import sys, tracetune.cli.main; print(json.dumps(sorted(m for m in sys.modules if m.startswith(('pydantic', 'tracetune.prepare', 'tracetune.train')))))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
