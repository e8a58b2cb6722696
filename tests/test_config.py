"""The run config: every bad key reported at once, overrides, and the shipped example validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracetune.errors import ConfigError, TracetuneError
from tracetune.pipeline.config import RunConfig, load_config, parse_override

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "tracetune" / "pipeline" / "example.toml"


def test_example_config_validates_and_names_every_section():
    config = load_config(EXAMPLE)
    text = EXAMPLE.read_text()
    for section in RunConfig.model_fields:
        if isinstance(getattr(config, section), object) and section not in ("name", "runs_dir", "seed"):
            assert f"[{section}" in text, f"example.toml has no [{section}] section"


def test_every_commented_key_of_the_example_is_one_the_loader_accepts(tmp_path):
    import re

    text = re.sub(r"^# ?([a-z_]+ = )", r"\1", EXAMPLE.read_text(), flags=re.M)
    (tmp_path / "all.toml").write_text(text)
    config = load_config(tmp_path / "all.toml")
    assert config.sweep.rule.rung_steps == 20 and config.sweep.isolate_variants and config.train.max_steps == 200


def test_every_bad_key_is_listed_with_its_location(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'name = "x"\n'
        "[train]\nlearning_rate = -1\nlora_rr = 8\n"
        "[publish]\nprivat = false\n"
        "[eval]\nmax_samples = 0\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "train.learning_rate:" in msg
    assert "train.lora_rr: unknown key (did you mean 'lora_r'?)" in msg
    assert "publish.privat: unknown key (did you mean 'private'?)" in msg
    assert "eval.max_samples:" in msg
    assert "4 problem(s)" in msg


def test_list_positions_are_shown_as_indices():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["traces.paths=['a', 3]"])
    assert "traces.paths[1]:" in str(err.value)


def test_overrides_and_flags_apply_over_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('name = "fromfile"\n[train]\nlr = 1e-4\n')
    config = load_config(path, ["train.lr=3e-4", "publish.repo_id=me/model", "train.lora_r=4"], name="fromflag")
    assert config.name == "fromflag"
    assert config.train.lr == 3e-4
    assert config.train.lora_r == 4
    assert config.publish.repo_id == "me/model"
    assert config.publish.private is True


def test_override_values_are_toml_or_plain_strings():
    assert parse_override("sweep.x=[1e-4, 2e-4]") == ("sweep.x", [1e-4, 2e-4])
    assert parse_override("student.model=Qwen/Qwen2-0.5B") == ("student.model", "Qwen/Qwen2-0.5B")
    with pytest.raises(ConfigError):
        parse_override("no-equals-sign")


def test_student_model_is_named_once():
    config = load_config(None, ["student.model=/models/base"])
    assert config.train.model == "/models/base"
    with pytest.raises(ConfigError, match="train.model"):
        load_config(None, ["train.model=other"])


def test_missing_and_broken_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_token_is_never_a_config_field():
    fields = RunConfig.model_fields["publish"].annotation.model_fields
    assert "token_env" in fields and "token" not in fields


def test_init_writes_a_config_that_validates_and_refuses_to_overwrite(tmp_path):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    target = tmp_path / "run.toml"
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert load_config(target).traces.paths == ["~/.pi/agent/sessions"]
    again = CliRunner().invoke(app, ["init", str(target)])
    assert isinstance(again.exception, TracetuneError) and "already exists" in str(again.exception)


def test_run_command_reports_config_problems_without_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlearning_rate = 'fast'\n[sweep_]\n")
    proc = subprocess.run([sys.executable, "-m", "tracetune.cli.main", "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "train.learning_rate:" in proc.stderr and "sweep_: unknown key (did you mean 'sweep'?)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_init_with_traces_writes_a_measured_config_that_runs_prepare(tmp_path, monkeypatch, tiny_student):
    """`init --traces` reads the sessions, measures them with the student's tokenizer, and the config it writes works."""
    from rich.console import Console
    from typer.testing import CliRunner

    from tracetune.cli.main import app
    from tracetune.pipeline.runner import run
    from tracetune.pipeline.stages import default_stages

    fixtures = Path(__file__).parent / "fixtures"
    traces = [str(fixtures / "pi" / "branched.jsonl"), str(fixtures / "messages")]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "tt.toml"
    res = CliRunner().invoke(app, ["init", str(out), "--student", "tiny", "--cpu",
                                   *[a for t in traces for a in ("--traces", t)]])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "# Measured by `tracetune init --traces`" in text and "max_steps = 110" in text
    config = load_config(out)
    assert config.sweep.rule.rung_steps == 16 and config.train.gradient_checkpointing
    assert config.traces.paths == traces and config.student.model == "tiny"
    assert config.prepare.max_length == config.train.max_length <= 2048
    from tracetune.pipeline.init_config import cpu_has_bf16

    assert (config.eval.backend.dtype == "bfloat16") == cpu_has_bf16()  # bf16 generation only where the CPU has it
    result = run(config, stages=[s for s in default_stages() if s.name in ("student", "prepare")], console=Console(quiet=True))
    stats = json.loads((result.run_dir / "prepare" / "prepare_stats.json").read_text())
    assert stats["examples"]["train"]["examples"] and stats["examples"]["eval"]["examples"]


def test_bf16_is_read_from_the_cpu_flags(tmp_path):
    from tracetune.pipeline.init_config import cpu_has_bf16

    (tmp_path / "with").write_text("flags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n")
    (tmp_path / "without").write_text("flags\t\t: fpu sse2 avx2\n")
    assert cpu_has_bf16(tmp_path / "with") and not cpu_has_bf16(tmp_path / "without")
    assert not cpu_has_bf16(tmp_path / "missing")


def test_claude_code_is_accepted_as_an_alias_of_claude_dash_code():
    assert load_config(None, ['traces.format="claude_code"']).traces.format == "claude-code"
    with pytest.raises(ConfigError, match="unknown format"):
        load_config(None, ['traces.format="claud"'])
