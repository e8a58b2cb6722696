"""Command-line mistakes end in one short message, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv, says", [
    (["train", "x", "--data", "y"], "No such option: --data"),
    (["evall"], "No such command 'evall'"),
])
def test_a_mistyped_option_or_command_prints_a_usage_error(argv, says):
    done = subprocess.run([sys.executable, "-m", "tracetune.cli.main", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr


def _tracetune(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "tracetune.cli.main", *argv], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_an_unexpected_error_is_one_line_and_a_hint_unless_debug(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    done = _tracetune("student", "tiny", "--out", str(blocker / "student"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(lines) == 2, done.stderr
    assert lines[0].startswith("error: ") and "Error: " in lines[0] and str(blocker) in lines[0]
    assert lines[1].strip().startswith("hint:") and "run with --debug for the traceback" in lines[1]

    debug = _tracetune("--debug", "student", "tiny", "--out", str(blocker / "student"))
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-2].startswith("error: ")
    assert "Traceback" in _tracetune("student", "tiny", "--out", str(blocker / "student"),
                                     env={"TRACETUNE_DEBUG": "1"}).stderr


# A run whose publish stage meets a Hub error (a 403 with a long body), through the real runner and entry point.
HUB_FAILURE = r'''
import sys
import httpx
from huggingface_hub.errors import HfHubHTTPError
from rich.console import Console
from tracetune.cli import main as cli
from tracetune.pipeline.config import load_config
from tracetune.pipeline.runner import Stage, run

def publish(ctx, out):
    body = "\n".join(f"<p>line {i} of the server's page</p>" for i in range(90))
    response = httpx.Response(403, request=httpx.Request("POST", "https://huggingface.co/api/repos/create"))
    raise HfHubHTTPError("403 Forbidden: you cannot create a repo in namespace 'someone'\n" + body,
                         response=response, server_message="You don't have the rights to create a model under this namespace")

@cli.app.command("fake-run")
def fake_run(runs: str):
    config = load_config(None, [], name="t", runs_dir=runs)
    run(config, stages=[Stage("publish", publish)], console=Console(stderr=True, quiet=True))

sys.argv = ["tracetune", *sys.argv[1:]]
cli.main()
'''


def test_a_hub_error_in_a_stage_names_the_stage_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-c", HUB_FAILURE, "fake-run", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: stage 'publish' failed: HfHubHTTPError: 403 Forbidden")
    assert len(lines[0]) < 400
    assert "Hugging Face Hub" in lines[1] and "--debug" in lines[1]


@pytest.mark.parametrize("argv", [
    ["prepare", "traces", "--student", "smollm2", "--out", "prepared"],
    ["train", "prepared", "--out", "trained", "--model", "tiny"],
])
def test_a_built_in_student_name_where_a_folder_is_needed_says_how_to_write_one(tmp_path, argv):
    done = subprocess.run([sys.executable, "-m", "tracetune.cli.main", *argv], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**__import__("os").environ, "HF_HUB_OFFLINE": "0"})
    assert done.returncode in (1, 2), done.stderr
    assert "is a built-in student" in done.stderr and "tracetune student" in done.stderr
    assert "Traceback" not in done.stderr and "Retrying" not in done.stderr
