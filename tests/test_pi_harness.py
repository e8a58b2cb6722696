"""The real pi CLI as a harness: against a scripted OpenAI server, and the tiny student served by transformers."""

from __future__ import annotations

import hashlib
import importlib.util
import urllib.request
from pathlib import Path

import pytest

from scripted_openai import Reply, ScriptedServer
from tracetune.errors import MissingExtraError, TracetuneError
from tracetune.engines.serve import TransformersServer
from tracetune.eval.harness import find_pi, run_pi_task
from tracetune.eval.harness import pi_isolation


@pytest.fixture
def task(tmp_path):
    """A workspace with one file, beside a file that pi must never touch."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("remember the milk\n")
    (tmp_path / "outside.txt").write_text("not yours\n")
    return workspace


def tree_digest(root: Path, skip: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and skip not in p.parents}


def home_pi_state() -> tuple:
    pi_dir = Path.home() / ".pi"
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in pi_dir.rglob("*"))) if pi_dir.exists() else ()


def test_missing_node_or_pi_is_a_clear_error(monkeypatch, tmp_path):
    with pytest.raises(TracetuneError, match="pi CLI not found") as exc:
        find_pi(tmp_path / "nowhere" / "cli.js")
    assert "install-pi-oracle.sh" in exc.value.hint
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(TracetuneError, match="needs node") as exc:
        run_pi_task(tmp_path, "hi", "http://127.0.0.1:9/v1", "m", timeout=5)
    assert "install-pi-oracle.sh" in exc.value.hint


def test_serving_errors_are_clear(monkeypatch, tmp_path):
    with pytest.raises(TracetuneError, match="not a model folder"):
        TransformersServer(tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingExtraError) as exc:
        TransformersServer(tmp_path).start()
    assert "tracetune[serve]" in exc.value.hint


@pytest.mark.oracle
def test_pi_runs_scripted_tool_calls_in_the_workspace(pi_cli, task, tmp_path):
    from pi_oracle_check import oracle_mismatches

    script = [Reply(tool="write", arguments={"path": "hello.txt", "content": "hi from pi\n"}),
              Reply(tool="bash", arguments={"command": "cat hello.txt notes.txt"}),
              Reply(text="Wrote hello.txt.")]
    before, home_before = tree_digest(tmp_path, task), home_pi_state()
    with ScriptedServer(script) as server:
        result = run_pi_task(task, "Write hello.txt", server.base_url, "scripted", timeout=60,
                             sessions_out=tmp_path / "sessions")
    assert result.exit_code == 0, result.stderr
    assert "Wrote hello.txt." in result.stdout
    assert (task / "hello.txt").read_text() == "hi from pi\n"
    assert len(server.requests) == 3 and server.requests[0]["model"] == "scripted"
    assert {t["function"]["name"] for t in server.requests[0]["tools"]} >= {"read", "bash", "edit", "write"}

    assert len(result.session_paths) == 1 and result.session_paths[0].parent == tmp_path / "sessions"
    assert result.read_errors == () and result.warnings == ()
    (session,) = result.sessions
    assert session.agent == "pi" and session.cwd == str(task)
    messages = session.episodes[0].messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[1].tool_calls[0].name == "write"
    assert messages[1].tool_calls[0].arguments == {"path": "hello.txt", "content": "hi from pi\n"}
    assert messages[4].content == "hi from pi\nremember the milk\n"
    assert messages[5].model == "tracetune/scripted"
    assert oracle_mismatches(result.session_paths[0]) == []

    assert tree_digest(tmp_path, task) == {**before, **_new_session_files(tmp_path, result)}
    assert home_pi_state() == home_before


def _new_session_files(root: Path, result) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in result.session_paths}


def test_a_server_that_never_answers_hits_the_time_limit(pi_cli, task):
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        result = run_pi_task(task, "hi", url, "m", timeout=3)
    assert result.timed_out and result.exit_code is None
    assert result.seconds < 10


@pytest.mark.skipif(pi_isolation.bwrap_path() is None, reason="bubblewrap (bwrap) is not installed")
def test_sandboxed_pi_reaches_only_the_model_endpoint(pi_cli, task, tmp_path):
    outside = tmp_path / "outside.txt"
    with ScriptedServer([Reply(text="unused")], model="other") as other:
        other_port = other.base_url.split(":")[2].split("/")[0]
        probe = (f"(exec 3<>/dev/tcp/127.0.0.1/{other_port}) 2>/dev/null; echo tcp=$?; "
                 f"cat {outside} 2>/dev/null; echo cat=$?; echo x > {tmp_path}/escape.txt")
        script = [Reply(tool="bash", arguments={"command": probe}), Reply(text="done")]
        with ScriptedServer(script) as server:
            result = run_pi_task(task, "probe", server.base_url, "scripted", timeout=60, sandbox=True,
                                 sessions_out=tmp_path / "sessions")
    assert result.exit_code == 0 and result.sandboxed, result.stderr
    output = result.sessions[0].episodes[0].messages[2].content
    assert "tcp=1" in output and "cat=1" in output, output
    assert other.requests == []
    assert not (tmp_path / "escape.txt").exists()
    assert outside.read_text() == "not yours\n"


@pytest.mark.slow
def test_pi_drives_the_tiny_student_served_by_transformers(pi_cli, tiny_student, task, tmp_path):
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("the serving extra is not installed: pip install 'tracetune[serve]'")
    before, home_before = tree_digest(tmp_path, task), home_pi_state()
    server = TransformersServer(tiny_student, name="tiny-student")
    with server:
        assert server.chat_requests() == 0
        result = run_pi_task(task, "List the files here.", server.base_url, server.model_name, timeout=120,
                             max_tokens=8, sessions_out=tmp_path / "sessions")
        requests = server.chat_requests()
    assert result.exit_code == 0, result.stderr
    assert requests >= 1
    assert len(result.session_paths) == 1
    assert result.read_errors == () and result.warnings == ()
    messages = result.sessions[0].episodes[0].messages
    assert messages[0].role == "user" and messages[0].content == "List the files here."
    assert messages[1].role == "assistant" and messages[1].model == "tracetune/tiny-student"
    assert tree_digest(tmp_path, task) == {**before, **_new_session_files(tmp_path, result)}
    assert home_pi_state() == home_before
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.base_url}/models", timeout=2)


def _serving_extra() -> None:
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("the serving extra is not installed: pip install 'tracetune[serve]'")


@pytest.mark.slow
def test_transformers_serve_returns_the_trained_students_tool_call_parsed(tool_student):
    import json

    import random

    from tool_student import toolset

    _serving_extra()
    body = {"model": "tool-student", "max_tokens": 64, "temperature": 0, "tools": toolset(random.Random(99)),
            "messages": [{"role": "user", "content": "What is in this folder?"}]}
    with TransformersServer(tool_student, name="tool-student") as server:
        request = urllib.request.Request(f"{server.base_url}/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    message = answer["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "bash"
    assert json.loads(call["function"]["arguments"]) == {"command": "ls"}
    assert "<tool_call>" not in (message.get("content") or "")


@pytest.mark.slow
def test_pi_runs_a_task_with_the_served_trained_student(pi_cli, tool_student, task, tmp_path):
    """pi, configured by tracetune, drives the served student: its bash call runs, then it replies."""
    _serving_extra()
    with TransformersServer(tool_student, name="tool-student") as server:
        result = run_pi_task(task, "List the files here.", server.base_url, server.model_name, timeout=180,
                             max_tokens=64, sessions_out=tmp_path / "sessions", tools=["bash"],
                             system_prompt="You are a coding agent.")
    assert result.exit_code == 0, result.stderr
    assert result.read_errors == () and result.warnings == ()
    messages = result.sessions[0].episodes[0].messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1].tool_calls[0].name == "bash" and messages[1].tool_calls[0].arguments == {"command": "ls"}
    assert "notes.txt" in messages[2].content and not messages[2].is_error
    assert messages[3].content.strip() == "Done." and messages[3].model == "tracetune/tool-student"


def test_pi_sandbox_runs_the_bwrap_it_found_by_its_full_path(tmp_path, monkeypatch):
    """pi's PATH may lack the folder bwrap was found in: the prefix names the detected executable itself."""
    monkeypatch.setattr(pi_isolation.shutil, "which", lambda name: "/opt/tools/bin/bwrap" if name == "bwrap" else None)
    argv = pi_isolation.bwrap_argv(workspace=tmp_path, scratch=tmp_path, read_only=[], env={})
    assert argv[0] == "/opt/tools/bin/bwrap"
    monkeypatch.setattr(pi_isolation.shutil, "which", lambda name: None)
    with pytest.raises(TracetuneError, match="bubblewrap"):
        pi_isolation.bwrap_argv(workspace=tmp_path, scratch=tmp_path, read_only=[], env={})
