"""``tracetune serve``: what gets served, the vLLM command, pi's models.json, and one real server."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracetune.cli.main import app
from tracetune.errors import MissingExtraError, TracetuneError
from tracetune.engines.serve import free_port
from tracetune.serve.engines import check_port_free, run_vllm, serve_transformers, vllm_argv
from tracetune.serve.options import ServeOptions
from tracetune.serve.pi_config import add_pi_provider, pi_models_path
from tracetune.serve.resolve import resolve_target
from tracetune.serve.run import check_target, for_engine

RESPONSE_TEMPLATE = {"fields": {"content": {"content": "text"}}}


def model_folder(path: Path, *, response_template: bool = True, chat_template: bool = True) -> Path:
    """Just the files resolution reads (no weights)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2", "max_position_embeddings": 4096}))
    config = {"response_template": RESPONSE_TEMPLATE} if response_template else {}
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    if chat_template:
        (path / "chat_template.jinja").write_text("{% for m in messages %}<tool_call>{{ m.content }}{% endfor %}")
    return path


def adapter_folder(path: Path, base: str, rank: int = 8) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "r": rank}))
    (path / "tokenizer_config.json").write_text(json.dumps({"response_template": RESPONSE_TEMPLATE}))
    (path / "chat_template.jinja").write_text("{{ messages }}<tool_call>")
    return path


def run_folder(path: Path, stages: dict | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"version": 1, "name": path.name, "stage_status": stages or {}}))
    return path


# -- what gets served ----------------------------------------------------------


def test_a_run_folder_serves_its_merged_model(tmp_path):
    run = run_folder(tmp_path / "demo")
    merged = model_folder(run / "publish" / "merged")
    adapter_folder(run / "publish" / "adapter", str(tmp_path / "base"))
    target = resolve_target(run)
    assert (target.kind, target.model, target.adapter) == ("model", str(merged), None)
    assert target.template.has_chat_template and target.template.has_response_template
    assert target.template.template_file == merged / "chat_template.jinja"
    assert target.context_window == 4096


def test_a_run_without_merged_model_serves_the_selected_adapter_on_its_student(tmp_path):
    run = run_folder(tmp_path / "demo")
    student = model_folder(run / "student")
    (run / "sweep").mkdir()
    (run / "sweep" / "selection.json").write_text(json.dumps({"winner": "lr1"}))
    adapter = adapter_folder(run / "sweep" / "variants" / "lr1" / "adapter", "/moved/away/student")
    adapter_folder(run / "sweep" / "variants" / "lr2" / "adapter", "/moved/away/student")
    target = resolve_target(run)
    assert (target.kind, target.model, target.adapter) == ("adapter", str(student), adapter)
    assert target.template.template_file == adapter / "chat_template.jinja"


def test_folders_that_hold_no_model_are_clear_errors(tmp_path):
    with pytest.raises(TracetuneError, match="no trained model yet") as exc:
        resolve_target(run_folder(tmp_path / "unfinished", {"prepare": "done", "sweep": "error"}))
    assert "sweep error" in exc.value.hint
    with pytest.raises(TracetuneError, match="no such folder"):
        resolve_target(tmp_path / "missing")
    with pytest.raises(TracetuneError, match="neither a run folder"):
        resolve_target(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(TracetuneError, match="is a file"):
        resolve_target(tmp_path / "file.txt")
    adapter = adapter_folder(tmp_path / "lonely", "/gone/base")
    with pytest.raises(TracetuneError, match="not there any more"):
        resolve_target(adapter)
    assert resolve_target("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"


def test_a_hub_id_that_cannot_be_downloaded_is_a_clear_error(monkeypatch):
    import huggingface_hub

    def offline(repo_id, **kwargs):
        raise OSError("offline mode is on")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    target = resolve_target("tracetune-tests/no-such-model")  # no such folder, so it reads as a Hub id
    with pytest.raises(TracetuneError, match="not a local folder and could not be downloaded"):
        for_engine(target, ServeOptions())
    assert for_engine(target, ServeOptions(engine="vllm")) == target  # vLLM downloads it itself


def test_missing_templates_are_warned_about(tmp_path):
    bare = resolve_target(model_folder(tmp_path / "bare", response_template=False))
    transformers, vllm = ServeOptions(), ServeOptions(engine="vllm")
    assert any("no response_template" in w for w in check_target(bare, transformers))
    assert check_target(bare, vllm) == []
    no_chat = resolve_target(model_folder(tmp_path / "nochat", chat_template=False))
    assert any("no chat template" in w for w in check_target(no_chat, transformers))
    assert check_target(resolve_target(model_folder(tmp_path / "good")), transformers) == []


# -- vLLM -----------------------------------------------------------------------


def test_vllm_command_for_a_merged_model(tmp_path):
    merged = model_folder(tmp_path / "merged")
    argv = vllm_argv(resolve_target(merged), ServeOptions(engine="vllm", name="me", port=8123))
    assert argv == ["vllm", "serve", str(merged), "--host", "127.0.0.1", "--port", "8123",
                    "--served-model-name", "me", "--seed", "0",
                    "--chat-template", str(merged / "chat_template.jinja"),
                    "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]


def test_vllm_command_for_an_adapter(tmp_path):
    base = model_folder(tmp_path / "base")
    adapter = adapter_folder(tmp_path / "adapter", str(base), rank=64)
    argv = vllm_argv(resolve_target(adapter), ServeOptions(engine="vllm", vllm_executable="/opt/v/bin/vllm"))
    assert argv == ["/opt/v/bin/vllm", "serve", str(base), "--host", "127.0.0.1", "--port", "8000",
                    "--served-model-name", "student-base", "--seed", "0",
                    "--chat-template", str(adapter / "chat_template.jinja"),
                    "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                    "--enable-lora", "--lora-modules", f"student={adapter}", "--max-lora-rank", "64"]


def test_print_only_prints_the_command_and_configures_pi(tmp_path):
    base = model_folder(tmp_path / "base")
    adapter = adapter_folder(tmp_path / "adapter", str(base))
    models = tmp_path / "pi" / "models.json"
    result = CliRunner().invoke(app, ["serve", str(adapter), "--engine", "vllm", "--print-only", "--port", "8200",
                                      "--pi", "--pi-models", str(models)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    expected = shlex.join(vllm_argv(resolve_target(adapter), ServeOptions(engine="vllm", port=8200)))
    assert expected in lines
    assert "pi --provider tracetune --model student" in lines
    entry = json.loads(models.read_text())["providers"]["tracetune"]
    assert entry["baseUrl"] == "http://127.0.0.1:8200/v1" and entry["models"][0]["id"] == "student"


def test_vllm_absent_is_a_clear_error_that_shows_the_command(tmp_path):
    target = resolve_target(model_folder(tmp_path / "merged"))
    opts = ServeOptions(engine="vllm", vllm_executable="no-such-vllm-here", port=free_port())
    with pytest.raises(TracetuneError, match="not on PATH") as exc:
        run_vllm(vllm_argv(target, opts), opts, on_ready=lambda endpoint: None)
    assert shlex.join(vllm_argv(target, opts)) in exc.value.message
    assert "own environment" in exc.value.hint


def test_transformers_engine_refuses_an_adapter_and_a_missing_extra(tmp_path, monkeypatch):
    base = model_folder(tmp_path / "base")
    adapter = resolve_target(adapter_folder(tmp_path / "adapter", str(base)))
    with monkeypatch.context() as installed:  # the adapter is refused whether or not the extra is there
        installed.setattr(importlib.util, "find_spec", lambda name: object())
        with pytest.raises(TracetuneError, match="cannot load a LoRA adapter") as exc:
            serve_transformers(adapter, ServeOptions(), on_ready=lambda endpoint: None)
    assert "--engine vllm" in exc.value.hint and "merge_adapter" in exc.value.hint
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError) as missing:
        serve_transformers(resolve_target(base), ServeOptions(), on_ready=lambda endpoint: None)
    assert missing.value.extra == "serve" and "tracetune[serve]" in missing.value.hint


def test_cli_rejects_bad_options(tmp_path):
    merged = model_folder(tmp_path / "merged")
    runner = CliRunner()
    for args, message in ((["--engine", "tgi"], "unknown engine"), (["--print-only"], "--print-only"),
                          (["--engine", "vllm", "--port", "0"], "fixed --port"), (["--name", "a b"], "invalid option")):
        result = runner.invoke(app, ["serve", str(merged), *args])
        assert isinstance(result.exception, TracetuneError) and message in str(result.exception), args


# -- pi's models.json -------------------------------------------------------------


def test_pi_models_path_follows_pi(tmp_path):
    assert pi_models_path({"PI_CODING_AGENT_DIR": str(tmp_path)}) == tmp_path / "models.json"
    assert pi_models_path({"PI_CODING_AGENT_DIR": "~/agent"}) == Path.home() / "agent" / "models.json"
    assert pi_models_path({}) == Path.home() / ".pi" / "agent" / "models.json"


def test_pi_config_keeps_other_providers_backs_up_and_replaces_only_ours(tmp_path):
    models = tmp_path / "models.json"
    theirs = {"ollama": {"baseUrl": "http://localhost:11434/v1", "api": "openai-completions", "apiKey": "ollama",
                         "models": [{"id": "llama3.1:8b"}]},
              "anthropic": {"baseUrl": "https://proxy.example/v1"}}
    original = json.dumps({"providers": theirs, "futureKey": [1, 2]}, indent=4)
    models.write_text(original)
    models.chmod(0o600)
    first = add_pi_provider("http://127.0.0.1:8000/v1", "student", path=models, context_window=4096)
    assert first.backup is not None and first.backup.read_text() == original and not first.replaced
    data = json.loads(models.read_text())
    assert {k: v for k, v in data["providers"].items() if k != "tracetune"} == theirs
    assert data["futureKey"] == [1, 2]
    assert data["providers"]["tracetune"]["baseUrl"] == "http://127.0.0.1:8000/v1"
    assert data["providers"]["tracetune"]["models"][0]["contextWindow"] == 4096
    assert stat.S_IMODE(models.stat().st_mode) == 0o600

    second = add_pi_provider("http://127.0.0.1:9000/v1", "tuned", path=models)
    assert second.replaced and second.backup != first.backup
    data = json.loads(models.read_text())
    assert {k: v for k, v in data["providers"].items() if k != "tracetune"} == theirs
    assert data["providers"]["tracetune"]["baseUrl"] == "http://127.0.0.1:9000/v1"
    assert [m["id"] for m in data["providers"]["tracetune"]["models"]] == ["tuned"]
    assert second.command == "pi --provider tracetune --model tuned"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_pi_config_refuses_invalid_json_and_creates_a_missing_file(tmp_path):
    models = tmp_path / "models.json"
    for text in ('{"providers": {', "[1, 2]", '{"providers": []}'):
        models.write_text(text)
        with pytest.raises(TracetuneError, match="will not"):
            add_pi_provider("http://127.0.0.1:8000/v1", "student", path=models)
        assert models.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.json"]
    result = CliRunner().invoke(app, ["serve", str(model_folder(tmp_path / "m")), "--pi", "--pi-models", str(models)])
    assert isinstance(result.exception, TracetuneError) and "will not" in str(result.exception)  # before any server

    fresh = tmp_path / "agent" / "models.json"
    result = add_pi_provider("http://127.0.0.1:8000/v1", "student", path=fresh, provider="mine")
    assert result.backup is None and not result.replaced
    assert list(json.loads(fresh.read_text())["providers"]) == ["mine"]
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_pi_config_writes_through_a_symlink(tmp_path):
    real = tmp_path / "dotfiles" / "models.json"
    real.parent.mkdir()
    real.write_text('{"providers": {}}')
    link = tmp_path / "agent" / "models.json"
    link.parent.mkdir()
    link.symlink_to(real)
    add_pi_provider("http://127.0.0.1:8000/v1", "student", path=link)
    assert link.is_symlink()
    assert "tracetune" in json.loads(real.read_text())["providers"]


def test_real_pi_lists_the_provider_we_wrote(tmp_path):
    from tracetune.eval.harness.pi_cli import find_pi

    try:
        node, cli = find_pi()
    except TracetuneError as exc:
        pytest.skip(f"the pi CLI is not available ({exc.message})")
    agent, home = tmp_path / "agent", tmp_path / "home"
    home.mkdir()
    (agent / "models.json").parent.mkdir()
    (agent / "models.json").write_text('{"providers": {"ollama": {"baseUrl": "http://localhost:11434/v1", '
                                       '"api": "openai-completions", "apiKey": "x", "models": [{"id": "llama3"}]}}}')
    add_pi_provider("http://127.0.0.1:8000/v1", "student", path=agent / "models.json", context_window=4096)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PI_CODING_AGENT_DIR": str(agent), "PI_OFFLINE": "1"}
    out = subprocess.run([node, str(cli), "--offline", "--list-models"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    rows = [line.split() for line in (out.stdout + out.stderr).splitlines()]  # pi prints the table on stderr
    assert ["tracetune", "student", "4.1K"] in [row[:3] for row in rows], out.stdout + out.stderr
    assert ["ollama", "llama3"] in [row[:2] for row in rows]


# -- a real server ------------------------------------------------------------------


@pytest.mark.slow
def test_serve_cli_answers_chat_and_stops_on_ctrl_c(tiny_student, tmp_path):
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("the serving extra is not installed: pip install 'tracetune[serve]'")
    port, models = free_port(), tmp_path / "models.json"
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "tracetune.cli.main", "serve", str(tiny_student), "--port", str(port),
           "--name", "tiny", "--pi", "--pi-models", str(models)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_line(proc, log, "Ctrl-C stops the server", timeout=150)
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            reply = json.loads(response.read())
        assert reply["choices"][0]["message"]["role"] == "assistant"
        assert json.loads(models.read_text())["providers"]["tracetune"]["baseUrl"] == f"http://127.0.0.1:{port}/v1"
        text = log.read_text()
        assert f"curl -s http://127.0.0.1:{port}/v1/chat/completions" in text
        assert "pi --provider tracetune --model tiny" in text
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "server stopped" in log.read_text()
    with pytest.raises(OSError):  # the server went with it
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
    check_port_free("127.0.0.1", port)


def _wait_for_line(proc: subprocess.Popen, log: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, log.read_text(errors="replace")
        time.sleep(0.5)
    raise AssertionError(f"not ready after {timeout} s:\n{log.read_text(errors='replace')}")
