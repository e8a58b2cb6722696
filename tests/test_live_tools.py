"""The pi-compatible tools of the live loop: pi's argument names and result texts, confined to the workspace."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tracetune.eval import sandbox
from tracetune.eval.live.specs import TOOL_NAMES, TOOL_SPECS
from tracetune.eval.live.tools import WorkspaceTools

SECRETS = {"HF_TOKEN": "hf_secret1", "OPENAI_API_KEY": "sk-secret2", "AWS_SECRET_ACCESS_KEY": "secret3", "DEPLOY_PASSWORD": "secret4"}


def _within(seconds, fn):
    """``fn()``'s value, failing (instead of hanging the suite) when it takes longer than ``seconds``."""
    box = []
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    return box[0]


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("def f():\n    return 1\n\n\ndef g():\n    return 2\n")
    (root / "notes.md").write_text("TODO: fix f\n")
    (tmp_path / "outside.txt").write_text("host secret\n")
    return root


def test_tool_names_and_parameters_match_pi():
    assert TOOL_NAMES == ("read", "bash", "edit", "write", "ls", "find", "grep")
    params = {t.name: set(t.parameters["properties"]) for t in TOOL_SPECS}
    assert params["read"] == {"path", "offset", "limit"}
    assert params["edit"] == {"path", "edits"}
    assert params["grep"] == {"pattern", "path", "glob", "ignoreCase", "literal", "context", "limit"}
    assert params["bash"] == {"command", "timeout"}


def test_read_with_offset_and_limit(ws):
    tools = WorkspaceTools(ws)
    assert tools.execute("read", {"path": "pkg/mod.py"}).text.startswith("def f():\n    return 1")
    part = tools.execute("read", {"path": "pkg/mod.py", "offset": 2, "limit": 1}).text
    assert part == "    return 1\n\n[5 more lines in file. Use offset=3 to continue.]"
    missing = tools.execute("read", {"path": "nope.py"})
    assert missing.is_error and "nope.py" in missing.text


def test_write_then_edit(ws):
    tools = WorkspaceTools(ws)
    assert tools.execute("write", {"path": "new/dir/a.py", "content": "x = 1\n"}).text == "Successfully wrote 6 bytes to new/dir/a.py"
    done = tools.execute("edit", {"path": "pkg/mod.py", "edits": [{"oldText": "return 1", "newText": "return 10"}, {"oldText": "return 2", "newText": "return 20"}]})
    assert done.text == "Successfully replaced 2 block(s) in pkg/mod.py."
    assert "return 10" in (ws / "pkg/mod.py").read_text() and "return 20" in (ws / "pkg/mod.py").read_text()


def test_edit_refuses_missing_and_ambiguous_text(ws):
    tools = WorkspaceTools(ws)
    before = (ws / "pkg/mod.py").read_text()
    missing = tools.execute("edit", {"path": "pkg/mod.py", "edits": [{"oldText": "return 3", "newText": "x"}]})
    assert missing.is_error and "Could not find" in missing.text
    twice = tools.execute("edit", {"path": "pkg/mod.py", "edits": [{"oldText": "return", "newText": "yield"}]})
    assert twice.is_error and "Found 2 occurrences" in twice.text
    assert (ws / "pkg/mod.py").read_text() == before


def test_edit_accepts_pi_legacy_arguments(ws):
    result = WorkspaceTools(ws).execute("edit", {"path": "pkg/mod.py", "oldText": "return 1", "newText": "return 5"})
    assert not result.is_error and "return 5" in (ws / "pkg/mod.py").read_text()


def test_ls_find_grep(ws):
    tools = WorkspaceTools(ws)
    assert tools.execute("ls", {}).text == "notes.md\npkg/"
    (ws / "empty").mkdir()
    assert tools.execute("ls", {"path": "empty"}).text == "(empty directory)"
    assert tools.execute("find", {"pattern": "*.py"}).text == "pkg/mod.py"
    assert tools.execute("find", {"pattern": "*.rs"}).text == "No files found matching pattern"
    assert tools.execute("grep", {"pattern": "def g"}).text == "pkg/mod.py:5: def g():"
    assert tools.execute("grep", {"pattern": "todo", "ignoreCase": True, "glob": "*.md"}).text == "notes.md:1: TODO: fix f"
    assert tools.execute("grep", {"pattern": "zzz"}).text == "No matches found"


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "pkg/../../outside.txt", "~/.bashrc"])
def test_paths_outside_the_workspace_are_refused(ws, path):
    tools = WorkspaceTools(ws)
    for name, args in [("read", {"path": path}), ("write", {"path": path, "content": "pwned"}),
                       ("edit", {"path": path, "edits": [{"oldText": "host", "newText": "pwned"}]}), ("ls", {"path": path})]:
        result = tools.execute(name, args)
        assert result.is_error and "outside the workspace" in result.text, (name, result)
    assert (ws.parent / "outside.txt").read_text() == "host secret\n"


def test_symlinks_out_of_the_workspace_are_refused(ws):
    os.symlink(ws.parent / "outside.txt", ws / "link.txt")
    os.symlink(ws.parent, ws / "up")
    tools = WorkspaceTools(ws)
    assert tools.execute("read", {"path": "link.txt"}).is_error
    assert tools.execute("write", {"path": "up/evil.txt", "content": "x"}).is_error
    assert tools.execute("write", {"path": "link.txt", "content": "x"}).is_error
    assert not (ws.parent / "evil.txt").exists()
    assert (ws.parent / "outside.txt").read_text() == "host secret\n"
    assert "outside" not in tools.execute("grep", {"pattern": "secret"}).text


def test_unknown_tool_and_bad_arguments_are_error_results(ws):
    tools = WorkspaceTools(ws)
    assert tools.execute("delete", {"path": "x"}).text == "Tool delete not found"
    bad = tools.execute("read", {"file": "pkg/mod.py"})
    assert bad.is_error and "path" in bad.text
    assert tools.execute("read", {"path": 3}).is_error


@pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason="bubblewrap (bwrap) is not installed or cannot start here")
def test_bash_runs_in_the_workspace_with_pi_status_lines(ws):
    tools = WorkspaceTools(ws, sandbox.SandboxLimits(timeout_s=5))
    assert tools.execute("bash", {"command": "ls pkg"}).text == "mod.py"
    assert tools.execute("bash", {"command": "true"}).text == "(no output)"
    failed = tools.execute("bash", {"command": "echo oops; exit 3"})
    assert failed.is_error and failed.text == "oops\n\nCommand exited with code 3"
    slow = tools.execute("bash", {"command": "sleep 10", "timeout": 0.5})
    assert slow.is_error and slow.text == "Command timed out after 0.5 seconds"
    assert tools.execute("bash", {"command": f"cat {ws.parent / 'outside.txt'}"}).is_error


def test_bash_is_an_error_result_in_workspace_tools_mode(ws):
    tools = WorkspaceTools(ws, mode="workspace-tools")
    result = tools.execute("bash", {"command": "touch made-by-bash"})
    assert result.is_error and "bash is unavailable in this mode" in result.text
    assert not (ws / "made-by-bash").exists()
    assert tools.execute("write", {"path": "a.txt", "content": "ok"}).text == "Successfully wrote 2 bytes to a.txt"
    assert tools.execute("read", {"path": "a.txt"}).text == "ok"


@pytest.mark.parametrize("mode", ["unsandboxed", pytest.param("bwrap", marks=pytest.mark.skipif(
    sandbox.bwrap_problem() is not None, reason="bubblewrap (bwrap) is not installed or cannot start here"))])
def test_bash_env_holds_no_credentials(ws, monkeypatch, mode):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    result = WorkspaceTools(ws, mode=mode).execute("bash", {"command": "env"})
    assert not result.is_error and f"HOME={ws.resolve()}" in result.text
    for key, value in SECRETS.items():
        assert key not in result.text and value not in result.text


def test_fifos_and_other_non_regular_files_never_block(ws):
    os.mkfifo(ws / "pipe")
    os.symlink("pipe", ws / "to-pipe")
    tools = WorkspaceTools(ws, sandbox.SandboxLimits(timeout_s=5))
    for name, args in [("read", {"path": "pipe"}), ("read", {"path": "to-pipe"}), ("write", {"path": "pipe", "content": "x"}),
                       ("write", {"path": "to-pipe", "content": "x"}),
                       ("edit", {"path": "pipe", "edits": [{"oldText": "a", "newText": "b"}]})]:
        result = _within(10, lambda: tools.execute(name, args))
        assert result.is_error and "Not a regular file" in result.text, (name, args, result)
    assert _within(10, lambda: tools.execute("grep", {"pattern": "def g"})).text == "pkg/mod.py:5: def g():"
    assert _within(10, lambda: tools.execute("grep", {"pattern": "x", "path": "pipe"})).text == "No matches found"
    assert "pipe" in _within(10, lambda: tools.execute("find", {"pattern": "*"})).text
    assert _within(10, lambda: tools.execute("read", {"path": "pkg"})).is_error


def test_a_hard_link_to_a_host_file_is_not_written_through(ws):
    os.link(ws.parent / "outside.txt", ws / "linked.txt")
    tools = WorkspaceTools(ws)
    assert tools.execute("write", {"path": "linked.txt", "content": "pwned"}).is_error
    assert tools.execute("edit", {"path": "linked.txt", "edits": [{"oldText": "host", "newText": "pwned"}]}).is_error
    assert (ws.parent / "outside.txt").read_text() == "host secret\n"


def test_escapes_through_dotdot_and_linked_folders(ws):
    os.symlink(ws.parent, ws / "up")
    tools = WorkspaceTools(ws)
    for path in ["up/outside.txt", "pkg/../up/outside.txt", "./../ws/../outside.txt", "@../outside.txt", str(ws.parent / "outside.txt")]:
        assert "outside the workspace" in tools.execute("read", {"path": path}).text, path
        assert tools.execute("write", {"path": path, "content": "pwned"}).is_error, path
    assert tools.execute("ls", {"path": "up"}).is_error and tools.execute("find", {"pattern": "*", "path": "up"}).is_error
    assert "outside.txt" not in tools.execute("find", {"pattern": "*.txt"}).text
    assert tools.execute("read", {"path": "pkg/../notes.md"}).text == "TODO: fix f\n"  # .. inside is fine
    assert (ws.parent / "outside.txt").read_text() == "host secret\n"


def test_a_runaway_regular_expression_stops_at_the_time_limit(ws):
    (ws / "long.txt").write_text("a" * 5000 + "!\n")
    tools = WorkspaceTools(ws, sandbox.SandboxLimits(timeout_s=0.5))
    start = time.monotonic()
    result = tools.execute("grep", {"pattern": "(a|aa)+$"})
    assert result.is_error and "timed out after 0.5 seconds" in result.text
    assert time.monotonic() - start < 5
    assert tools.execute("grep", {"pattern": "def f"}).text == "pkg/mod.py:1: def f():"  # the timer is gone again


def test_the_time_limit_holds_off_the_main_thread(ws):
    """No timer off the main thread: the loop checks stop a slow search between lines (each ~20 ms here)."""
    (ws / "many.txt").write_text(("b" * 24 + "!\n") * 2000)
    tools = WorkspaceTools(ws, sandbox.SandboxLimits(timeout_s=0.2))
    result = _within(20, lambda: tools.execute("grep", {"pattern": "(b|bb)+$"}))
    assert result.is_error and "timed out" in result.text


def test_odd_arguments_are_error_results_not_crashes(ws):
    tools = WorkspaceTools(ws, mode="workspace-tools")
    assert tools.execute("read", {"path": "a\0b"}).is_error
    assert tools.execute("write", {"path": "a\0b", "content": "x"}).is_error
    assert tools.execute("bash", {"command": "echo \0"}).is_error
    assert tools.execute("read", {"path": "x" * 5000}).is_error
