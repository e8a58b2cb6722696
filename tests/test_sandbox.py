"""The sandbox around the live loop's commands: workspace-only writes, time, output and network limits."""

from __future__ import annotations

import socket
import time

import pytest

from tracetune.errors import TracetuneError
from tracetune.eval import sandbox
from tracetune.eval.sandbox import SandboxLimits, run_sandboxed

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap (bwrap) is not installed")


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


def test_missing_bwrap_is_a_clear_error_unless_unsandboxed_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    with pytest.raises(TracetuneError, match="bubblewrap") as info:
        run_sandboxed("true", tmp_path)
    assert "allow_unsandboxed" in (info.value.hint or "")
    result = run_sandboxed("echo weak > f.txt; cat f.txt", tmp_path, allow_unsandboxed=True)
    assert result.output == "weak\n" and not result.sandboxed
    slow = run_sandboxed("sleep 20", tmp_path, SandboxLimits(timeout_s=0.5), allow_unsandboxed=True)
    assert slow.timed_out
