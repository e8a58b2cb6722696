"""The live agent loop: a scripted backend solves a task, bad outputs are recorded, sessions read back."""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass, field

import pytest

from tracetune.conversation.types import Message, ToolCall
from tracetune.demo.teacher import solution_turns
from tracetune.eval import sandbox
from tracetune.eval.sandbox import SandboxLimits
from tracetune.eval.backends.base import Generation
from tracetune.eval.live import LiveConfig, load_tasks, run_live
from tracetune.readers import pi

from pi_oracle_check import oracle_mismatches

NO_BWRAP = sandbox.bwrap_problem() is not None
SECRETS = {"HF_TOKEN": "hf_secret1", "OPENAI_API_KEY": "sk-secret2", "AWS_SECRET_ACCESS_KEY": "secret3",
           "SOME_SERVICE_TOKEN": "secret4", "PGPASSWORD": "secret5"}


def _cfg(**kwargs) -> LiveConfig:
    """Scripted backends run only the suite's own commands, so they may run unsandboxed where bwrap is missing."""
    return LiveConfig(sandbox="unsandboxed" if NO_BWRAP else "bwrap", **kwargs)


@dataclass
class ScriptedBackend:
    """Replays fixed assistant turns (or raw generations), one per request."""

    turns: list
    name: str = "scripted"
    requests: list = field(default_factory=list)

    def generate(self, requests):
        self.requests.extend(requests)
        out = []
        for _ in requests:
            turn = self.turns.pop(0) if self.turns else Message(role="assistant", content="done")
            out.append(turn if isinstance(turn, Generation) else Generation(raw="", message=turn, prompt_tokens=10, completion_tokens=5))
        return out

    def close(self):
        pass


def _task(task_id):
    [task] = load_tasks(["train", "heldout"], [task_id])
    return task


def _read_back(path):
    [session] = pi.read(path)
    assert session.warnings == ()
    return session


def test_replayed_teacher_solves_the_task_and_is_scored(tmp_path):
    task = _task("fix-add")
    backend = ScriptedBackend(solution_turns(task))
    result = run_live(_cfg(max_turns=10), backend, [task], tmp_path)
    [ep] = result.episodes
    assert ep.success and ep.ended_by == "reply"
    assert ep.tool_calls == 4 and ep.valid_calls == 4 and ep.turns == 5
    assert ep.prompt_tokens == 50 and ep.completion_tokens == 25
    summary = result.to_dict()["summary"]
    assert summary["success_rate"] == 1.0 and summary["valid_call_rate"] == 1.0 and summary["self_ended_rate"] == 1.0
    # the model saw its tool results: the request before the edit holds the file read
    assert any(m["role"] == "tool" and "return a - b" in m["content"] for m in backend.requests[2].messages)
    assert {t["function"]["name"] for t in backend.requests[0].tools} == {"read", "bash", "edit", "write", "ls", "find", "grep"}
    session = _read_back(ep.session_path)
    [episode] = session.episodes
    assert [m.role for m in episode.messages][:3] == ["user", "assistant", "tool"]
    assert session.trainable_turns == 5
    written = json.loads((tmp_path / "live_results_scripted.json").read_text())
    assert written["episodes"][0]["success"] is True


def test_a_model_that_does_nothing_fails_the_check(tmp_path):
    result = run_live(_cfg(), ScriptedBackend([Message(role="assistant", content="Looks fine to me.")]), [_task("fix-add")], tmp_path)
    [ep] = result.episodes
    assert not ep.success and ep.ended_by == "reply" and ep.turns == 1
    assert "FAILED" in ep.check_output


def test_unparsable_output_is_recorded_as_a_parse_failure(tmp_path):
    bad = Generation(raw='<tool_call>{"name": "read", "arguments": {', message=None, parse_error="invalid_json", completion_tokens=9)
    result = run_live(_cfg(), ScriptedBackend([bad]), [_task("fix-add")], tmp_path)
    [ep] = result.episodes
    assert ep.ended_by == "parse_error" and ep.parse_errors == ("invalid_json",)
    assert result.summary()["parse_failures"] == 1
    lines = [json.loads(x) for x in open(ep.session_path)]
    last = lines[-1]["message"]
    assert last["stopReason"] == "error" and "invalid_json" in last["errorMessage"]
    assert last["content"][0]["text"] == bad.raw
    session = _read_back(ep.session_path)
    [assistant] = [m for ep_ in session.episodes for m in ep_.messages if m.role == "assistant"]
    assert not assistant.trainable


def test_invalid_calls_are_counted_and_turns_capped(tmp_path):
    calls = [  # the same call id every turn, as small models do: the recorder keeps ids unique
        Message(role="assistant", tool_calls=(ToolCall("c1", "open_file", {"path": "calc.py"}),)),
        Message(role="assistant", tool_calls=(ToolCall("c1", "read", {"file": "calc.py"}),)),
        Message(role="assistant", tool_calls=(ToolCall("c1", "ls", {}),)),
    ]
    result = run_live(_cfg(max_turns=3), ScriptedBackend(calls), [_task("fix-add")], tmp_path)
    [ep] = result.episodes
    assert ep.ended_by == "max_turns" and ep.turns == 3
    assert ep.tool_calls == 3 and ep.valid_calls == 1
    session = _read_back(ep.session_path)
    tools = [m for m in session.episodes[0].messages if m.role == "tool"]
    assert [t.is_error for t in tools] == [True, True, False]
    assert tools[0].content == "Tool open_file not found"
    assert len({t.tool_call_id for t in tools}) == 3


@pytest.mark.slow
def test_tiny_student_runs_the_suite_end_to_end(tmp_path, tiny_student):
    """A real model's commands: in bubblewrap, or without bwrap with no shell at all (the default "auto")."""
    from tracetune.eval.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_student, device="cpu", name="base")
    tasks = load_tasks(["heldout"])[:2]
    result = run_live(LiveConfig(max_turns=2, max_new_tokens=16), backend, tasks, tmp_path)
    assert len(result.episodes) == 2
    for ep in result.episodes:
        assert 1 <= ep.turns <= 2 and ep.completion_tokens > 0
        _read_back(ep.session_path)
    assert set(result.to_dict()["by_difficulty"]) <= {"easy", "medium", "hard"}


@pytest.mark.oracle
def test_live_sessions_pass_the_pi_oracle(tmp_path):
    task = _task("fix-add")
    bad = Generation(raw="<tool_call>{", message=None, parse_error="invalid_json")
    solved = run_live(_cfg(), ScriptedBackend(solution_turns(task)), [task], tmp_path / "a")
    failed = run_live(_cfg(), ScriptedBackend([solution_turns(task)[0], bad]), [task], tmp_path / "b")
    for ep in solved.episodes + failed.episodes:
        assert oracle_mismatches(Path(ep.session_path)) == []


def test_suite_is_graded_with_a_heldout_part_and_every_check_decides(tmp_path):
    from tracetune.eval.live.tools import WorkspaceTools

    tasks = load_tasks()
    assert len(tasks) >= 8
    for split in ("train", "heldout"):
        assert {t.difficulty for t in tasks if t.split == split} == {"easy", "medium", "hard"}
    for task in tasks:
        ws = tmp_path / task.id
        ws.mkdir()
        task.setup(ws)
        assert task.run_check(ws, SandboxLimits(timeout_s=2), allow_unsandboxed=NO_BWRAP).exit_code != 0, f"{task.id} passes before any change"
        tools = WorkspaceTools(ws)
        assert not any(tools.execute(s.tool, s.arguments).is_error for s in task.solution)
        (ws / next(iter(task.check_files))).write_text("raise SystemExit(0)\n")  # tampered tests are restored
        assert task.run_check(ws, allow_unsandboxed=NO_BWRAP).exit_code == 0, f"{task.id}: the reference solution fails the check"


def test_bad_task_file_and_unknown_ids_are_clear_errors(tmp_path):
    from tracetune.errors import TracetuneError

    (tmp_path / "t.toml").write_text('id = "x"\ndifficulty = "trivial"\nsplit = "train"\ninstruction = "i"\ncheck = "true"\n')
    with pytest.raises(TracetuneError, match="difficulty"):
        load_tasks(directory=tmp_path)
    with pytest.raises(TracetuneError, match="unknown task id"):
        load_tasks(ids=["no-such-task"])
    with pytest.raises(TracetuneError, match=r"fix-add \(train\) are not in the selected split\(s\) heldout"):
        load_tasks(["heldout"], ids=["fix-add", "fix-max"])


def test_tools_offered_follow_prepares_tools_file(tmp_path):
    tools_json = tmp_path / "tools.json"
    defs = [{"type": "function", "function": {"name": n, "description": f"the {n} tool", "parameters": {"type": "object", "properties": {}}}}
            for n in ("read", "bash", "web_search")]
    tools_json.write_text(json.dumps({"agents": {"pi": {"tools": defs}}}))
    backend = ScriptedBackend([Message(role="assistant", content="ok")])
    run_live(_cfg(tools_file=str(tools_json)), backend, [_task("fix-add")], tmp_path / "out")
    assert [t["function"]["name"] for t in backend.requests[0].tools] == ["read", "bash"]
    assert backend.requests[0].tools[0]["function"]["description"] == "the read tool"


def test_check_restores_tests_without_following_planted_symlinks(tmp_path):
    task = _task("fix-add")
    ws = tmp_path / "ws"
    ws.mkdir()
    task.setup(ws)
    victim = tmp_path / "host_file.txt"
    victim.write_text("precious\n")
    (ws / "test_calc.py").unlink()
    (ws / "test_calc.py").symlink_to(victim)
    task.run_check(ws, allow_unsandboxed=NO_BWRAP)
    assert victim.read_text() == "precious\n"
    assert not (ws / "test_calc.py").is_symlink()


def test_without_bwrap_the_default_runs_the_workspace_tools_only(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    task = _task("fix-add")
    result = run_live(LiveConfig(max_turns=10), ScriptedBackend(solution_turns(task)), [task], tmp_path)
    [ep] = result.episodes
    assert ep.success and ep.tool_calls == 4  # the edit fixed it; the check ran
    assert result.sandbox["mode"] == "workspace-tools" and result.sandbox["shell"] is False
    assert json.loads((tmp_path / "live_results_scripted.json").read_text())["sandbox"]["mode"] == "workspace-tools"
    [bash] = [m for m in _read_back(ep.session_path).episodes[0].messages if m.role == "tool" and m.name == "bash"]
    assert bash.is_error and "bash is unavailable in this mode" in bash.content


def test_sandbox_bwrap_without_bwrap_refuses_before_running(tmp_path, monkeypatch):
    from tracetune.errors import TracetuneError

    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    backend = ScriptedBackend([])
    with pytest.raises(TracetuneError, match="bubblewrap") as info:
        run_live(LiveConfig(sandbox="bwrap"), backend, [_task("fix-add")], tmp_path)
    assert "eval.live.sandbox" in info.value.message and "apt-get install bubblewrap" in info.value.hint
    assert backend.requests == []


@pytest.mark.parametrize("setting", ["unsandboxed", "auto", pytest.param("bwrap", marks=pytest.mark.skipif(
    NO_BWRAP, reason="bubblewrap (bwrap) is not installed or cannot start here"))])
def test_commands_of_the_live_loop_never_see_credentials(tmp_path, monkeypatch, setting):
    """The model's bash call (where it has a shell) and the task check both print their environment."""
    from tracetune.eval.live.tasks import Task

    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    task = Task(id="env", difficulty="easy", split="heldout", instruction="show env", check="env", files={"a.txt": "x"})
    call = Message(role="assistant", tool_calls=(ToolCall("c1", "bash", {"command": "env"}),))
    result = run_live(LiveConfig(sandbox=setting), ScriptedBackend([call]), [task], tmp_path)
    [ep] = result.episodes
    [tool] = [m for m in _read_back(ep.session_path).episodes[0].messages if m.role == "tool"]
    assert ep.success and "HOME=" in ep.check_output
    assert ("HOME=" in tool.content) == (result.sandbox["mode"] != "workspace-tools")
    for key, value in SECRETS.items():
        for text in (tool.content, ep.check_output):
            assert key not in text and value not in text
