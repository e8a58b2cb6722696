"""The sandbox around the live loop's commands: workspace-only writes, time, output and network limits; the modes."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tracetune.errors import TracetuneError
from tracetune.eval import sandbox
from tracetune.eval.sandbox import SandboxLimits, resolve_mode, run_command, run_sandboxed

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason="bubblewrap (bwrap) is not installed or cannot start here")
SECRETS = {"HF_TOKEN": "hf_secret1", "OPENAI_API_KEY": "sk-secret2", "AWS_ACCESS_KEY_ID": "AKIASECRET3",
           "AWS_SECRET_ACCESS_KEY": "secret4", "DB_PASSWORD": "secret5", "MY_SERVICE_SECRET": "secret6",
           "GITHUB_TOKEN": "ghp_secret7", "ANTHROPIC_API_KEY": "secret8"}


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)


def _fake_bwrap(folder, body: str) -> str:
    """An executable named bwrap outside PATH, running ``body`` (a shell script)."""
    folder.mkdir(exist_ok=True)
    path = folder / "bwrap"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


@needs_bwrap
def test_writes_land_in_the_workspace_only(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside.txt"
    result = run_sandboxed(f"echo in > inside.txt; echo out > {outside}; echo x > /etc/tracetune-test; cat inside.txt", ws)
    assert (ws / "inside.txt").read_text() == "in\n"
    assert not outside.exists()
    assert "Read-only file system" in result.output
    assert result.sandboxed


@needs_bwrap
def test_read_only_binds_cannot_be_remounted(tmp_path):
    result = run_sandboxed("grep CapEff /proc/self/status; mount -o remount,rw /etc && echo REMOUNTED", tmp_path)
    assert "CapEff:\t0000000000000000" in result.output
    assert "REMOUNTED" not in result.output


@needs_bwrap
def test_host_files_outside_the_workspace_are_not_visible(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    result = run_sandboxed(f"cat {secret}", ws)
    assert result.exit_code != 0
    assert "token" not in result.output


@needs_bwrap
def test_runaway_command_is_stopped_at_its_limit(tmp_path):
    start = time.monotonic()
    result = run_sandboxed("echo started; while true; do :; done", tmp_path, SandboxLimits(timeout_s=1.0))
    assert result.timed_out and result.exit_code is None
    assert "started" in result.output
    assert time.monotonic() - start < 6


@needs_bwrap
def test_background_job_does_not_outlive_the_command(tmp_path):
    start = time.monotonic()
    result = run_sandboxed("sleep 30 & echo spawned", tmp_path, SandboxLimits(timeout_s=10))
    assert result.exit_code == 0 and not result.timed_out
    assert time.monotonic() - start < 5


@needs_bwrap
def test_network_is_refused(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')"
        result = run_sandboxed(f'python3 -c "{code}"', tmp_path, SandboxLimits(timeout_s=10))
    finally:
        server.close()
    assert "CONNECTED" not in result.output
    assert result.exit_code != 0


@needs_bwrap
def test_output_is_truncated_with_a_marker(tmp_path):
    result = run_sandboxed("yes abcdefgh | head -c 100000", tmp_path, SandboxLimits(max_output_bytes=1000))
    assert result.truncated and result.exit_code == 0
    assert result.output.startswith("abcdefgh\n")
    assert "[output truncated: 99000 more bytes not shown]" in result.output
    assert len(result.output) < 1100


@needs_bwrap
def test_environment_is_cleared(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACETUNE_SECRET_TOKEN", "hunter2")
    result = run_sandboxed("env", tmp_path)
    assert "hunter2" not in result.output
    assert f"HOME={tmp_path.resolve()}" in result.output


def test_missing_bwrap_is_a_clear_error_unless_unsandboxed_is_asked_for(tmp_path, no_bwrap):
    with pytest.raises(TracetuneError, match="bubblewrap") as info:
        run_sandboxed("true", tmp_path)
    assert "apt-get install bubblewrap" in info.value.hint and 'eval.live.sandbox = "auto"' in info.value.hint
    assert "allow_unsandboxed" not in info.value.hint  # no Python argument names in what a user reads
    with pytest.raises(TracetuneError, match="bubblewrap"):
        run_command("true", tmp_path, confined=True)
    result = run_sandboxed("echo weak > f.txt; cat f.txt", tmp_path, allow_unsandboxed=True)
    assert result.output == "weak\n" and not result.sandboxed
    slow = run_sandboxed("sleep 20", tmp_path, SandboxLimits(timeout_s=0.5), allow_unsandboxed=True)
    assert slow.timed_out


def test_modes_resolve_without_bwrap(no_bwrap):
    assert resolve_mode("auto") == "workspace-tools"
    assert resolve_mode("workspace-tools") == "workspace-tools"
    assert resolve_mode("unsandboxed") == "unsandboxed"
    with pytest.raises(TracetuneError) as info:
        resolve_mode("bwrap")
    assert 'eval.live.sandbox = "bwrap"' in info.value.message and "not installed" in info.value.message
    assert "apt-get install bubblewrap" in info.value.hint
    with pytest.raises(TracetuneError, match="eval.live.sandbox"):
        resolve_mode("off")
    assert not sandbox.checks_confined("workspace-tools") and not sandbox.checks_confined("unsandboxed")
    record = sandbox.mode_record("workspace-tools")
    assert record["mode"] == "workspace-tools" and record["shell"] is False and record["checks"] == "plain"
    assert "no shell" in record["summary"] and not any(c.isdigit() for c in record["summary"])


def test_an_installed_bwrap_that_cannot_start_is_not_used(tmp_path, monkeypatch):
    broken = _fake_bwrap(tmp_path / "bin", "echo 'bwrap: No permissions to create new namespace' >&2; exit 1")
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: broken)
    monkeypatch.setattr(sandbox, "_PROBED", {})
    assert "No permissions to create new namespace" in sandbox.bwrap_problem()
    assert resolve_mode("auto") == "workspace-tools"
    with pytest.raises(TracetuneError, match="cannot start a sandbox") as info:
        resolve_mode("bwrap")
    assert "user namespaces" in info.value.hint


def test_the_bwrap_that_was_found_is_the_one_run(tmp_path, monkeypatch):
    """Detection and use share one path: a bwrap outside the commands' PATH is still the one started."""
    marker = tmp_path / "ran.txt"
    fake = _fake_bwrap(tmp_path / "elsewhere", f'echo "$@" >> {marker}')
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: fake)
    monkeypatch.setattr(sandbox, "_PROBED", {})
    ws = tmp_path / "ws"
    ws.mkdir()
    result = run_command("echo hi", ws, confined=True)
    assert result.exit_code == 0 and result.sandboxed
    calls = marker.read_text().splitlines()
    assert len(calls) == 2 and calls[-1].endswith("-c echo hi")  # the probe, then the command
    assert sandbox.build_argv("true", ws, SandboxLimits(), fake)[0] == fake


def test_secret_names():
    for name in SECRETS:
        assert sandbox.is_secret_name(name), name
    for name in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONDONTWRITEBYTECODE"):
        assert not sandbox.is_secret_name(name), name
    assert sandbox.scrub_env({"PATH": "/bin", "HF_TOKEN": "x"}) == {"PATH": "/bin"}


@pytest.mark.parametrize("confined", [False, pytest.param(True, marks=needs_bwrap)])
def test_commands_never_see_credentials(tmp_path, monkeypatch, confined):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    result = run_command("env", tmp_path, confined=confined)
    assert result.exit_code == 0 and f"HOME={tmp_path.resolve()}" in result.output
    for key, value in SECRETS.items():
        assert key not in result.output and value not in result.output


def test_a_plain_process_keeps_the_limits(tmp_path, monkeypatch):
    limits = SandboxLimits(timeout_s=0.5, memory_mb=256, max_file_mb=2)
    slow = run_command("sleep 20", tmp_path, limits, confined=False)
    assert slow.timed_out and not slow.sandboxed
    shown = run_command("ulimit -v; ulimit -f; ulimit -t", tmp_path, SandboxLimits(memory_mb=256, max_file_mb=2), confined=False)
    kb, blocks, cpu = shown.output.split()
    assert int(kb) == 256 * 1024 and int(blocks) == 2 * 1024 and cpu != "unlimited"  # bash counts KiB
    monkeypatch.setattr(sandbox, "_prlimit_args", lambda limits, plain: [])  # a host without prlimit
    again = run_command("ulimit -v", tmp_path, SandboxLimits(memory_mb=256), confined=False)
    assert int(again.output) == 256 * 1024
    assert os.environ.get("HOME") != str(tmp_path)  # our own process is untouched
