"""`tracetune demo` and the sandbox: the generated config's mode, the line said before it starts, --unsandboxed."""

from __future__ import annotations

import tomllib

import pytest
from rich.console import Console

from tracetune.errors import TracetuneError
from tracetune.eval import sandbox


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)


@pytest.mark.parametrize("profile", ["smollm2", "smollm2-full", "tiny"])
def test_demo_config_never_allows_unconfined_by_itself(tmp_path, no_bwrap, profile):
    from tracetune.demo.pipeline import write_demo_config
    from tracetune.pipeline.config import load_config

    for name in ("demo", "demo2"):
        (tmp_path / name).mkdir()
    path = write_demo_config(tmp_path / "demo", seed=0, profile=profile)
    text = path.read_text()
    assert "allow_unsandboxed" not in text
    assert tomllib.loads(text)["eval"]["live"]["sandbox"] == "auto"
    assert load_config(path).eval.live.sandbox == "auto"
    flagged = write_demo_config(tmp_path / "demo2", seed=0, profile=profile, unsandboxed=True)
    assert load_config(flagged).eval.live.sandbox == "unsandboxed"


def _said(live_setting: str) -> tuple[str, str]:
    from tracetune.demo.pipeline import announce_sandbox
    from tracetune.eval.live import LiveConfig

    console = Console(record=True, width=400)
    mode = announce_sandbox(LiveConfig(sandbox=live_setting), console)
    return mode, console.export_text()


def test_demo_says_how_the_student_runs_before_it_starts(no_bwrap):
    mode, text = _said("auto")
    assert mode == "workspace-tools"
    assert "not installed" in text and "no shell" in text and "--unsandboxed" in text
    mode, text = _said("unsandboxed")
    assert mode == "unsandboxed" and "UNSANDBOXED (--unsandboxed)" in text


@pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason="bubblewrap (bwrap) is not installed or cannot start here")
def test_demo_says_bubblewrap_where_it_works():
    mode, text = _said("auto")
    assert mode == "bwrap" and "bubblewrap" in text


def test_demo_fails_before_the_teacher_when_the_live_loop_cannot_run(tmp_path, no_bwrap):
    from tracetune.demo.pipeline import run_demo

    out = tmp_path / "demo"
    with pytest.raises(TracetuneError, match="eval.live.sandbox"):
        run_demo(out, console=Console(quiet=True), overrides=['eval.live.sandbox="bwrap"'], student="tiny")
    assert not (out / "traces").exists()


def test_cli_has_the_unsandboxed_flag():
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    res = CliRunner().invoke(app, ["demo", "--help"])
    assert res.exit_code == 0 and "--unsandboxed" in res.output


def test_summary_line_names_the_mode(tmp_path):
    from tracetune.demo.pipeline import DemoResult, print_summary

    console = Console(record=True, width=200)
    print_summary(DemoResult(tmp_path, tmp_path / "demo.toml", 1.0, 3, sandbox="workspace-tools"), console)
    assert "live loop sandbox: workspace-tools" in console.export_text()
