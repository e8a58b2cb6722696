"""The live loop with the real pi CLI as harness: scripted server, stage and CLI, and the served tiny student."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pytest

from scripted_openai import Reply, ScriptedServer
from tracetune.conversation.types import Episode, Message, ToolCall, ToolSpec
from tracetune.conversation.wire import episode_to_wire
from tracetune.demo.teacher import solution_turns
from tracetune.errors import TracetuneError
from tracetune.eval import sandbox
from tracetune.eval.backends import BackendSet
from tracetune.eval.backends.base import Generation
from tracetune.eval.config import EvalConfig
from tracetune.eval.live import LiveConfig, PiEndpoint, load_tasks, run_live, run_live_pi
from tracetune.pipeline.config import ConfigError, load_config
from tracetune.readers import pi

NO_BWRAP = sandbox.bwrap_path() is None


def _cfg(**kwargs) -> LiveConfig:
    return LiveConfig(harness="pi", allow_unsandboxed=NO_BWRAP, episode_timeout_s=60, **kwargs)


def _task(task_id: str = "fix-add"):
    [task] = load_tasks(["train", "heldout"], [task_id])
    return task


def _replies(task) -> list[Reply]:
    """The reference solution of a task as scripted server replies (one call per turn, then the answer)."""
    out = []
    for turn in solution_turns(task):
        if turn.tool_calls:
            [call] = turn.tool_calls
            out.append(Reply(tool=call.name, arguments=call.arguments))
        else:
            out.append(Reply(text=turn.content))
    return out


class ScriptedBackend:
    """The built-in loop's side of the shape comparison: replays fixed assistant turns."""

    name = "base"

    def __init__(self, turns):
        self.turns = list(turns)

    def generate(self, requests):
        turn = self.turns.pop(0) if self.turns else Message(role="assistant", content="done")
        return [Generation(raw="", message=turn, prompt_tokens=10, completion_tokens=5)]

    def close(self):
        pass


def _keys(obj, prefix=""):
    """Every key path of a JSON-like value (list items merged), to compare result shapes."""
    if isinstance(obj, dict):
        return {k for key, v in obj.items() for k in {f"{prefix}.{key}"} | _keys(v, f"{prefix}.{key}")}
    if isinstance(obj, list):
        return set().union(*(_keys(v, f"{prefix}[]") for v in obj)) if obj else set()
    return set()


def test_pi_solves_a_task_end_to_end_and_results_match_the_builtin_shape(pi_cli, tmp_path):
    task = _task()
    with ScriptedServer(_replies(task)) as server:
        live = run_live_pi(_cfg(), PiEndpoint(server.base_url, "scripted"), "base", [task], tmp_path / "pi")
    [ep] = live.episodes
    assert ep.success, ep.check_output
    assert ep.ended_by == "reply" and ep.error is None
    assert ep.turns == 5 and ep.tool_calls == 4 and ep.valid_calls == 4
    assert len(server.requests) == 5
    assert {t["function"]["name"] for t in server.requests[0]["tools"]} == {"read", "bash", "edit", "write", "ls", "find", "grep"}

    session_path = Path(ep.session_path)
    assert session_path.parent == tmp_path / "pi" / "sessions" / "base"
    [session] = pi.read(session_path)
    assert session.warnings == ()
    messages = session.episodes[0].messages
    assert messages[0].content == task.instruction
    assert [c.name for m in messages for c in m.tool_calls] == ["ls", "read", "edit", "bash"]
    assert messages[-1].model == "tracetune/scripted"

    written = json.loads((tmp_path / "pi" / "live_results_base.json").read_text())
    assert written["settings"]["harness"] == "pi" and written["summary"]["success_rate"] == 1.0
    builtin = run_live(LiveConfig(allow_unsandboxed=NO_BWRAP), ScriptedBackend(solution_turns(task)), [task], tmp_path / "b")
    assert builtin.episodes[0].success
    assert _keys(written) == _keys(builtin.to_dict())


def test_a_task_pi_does_not_solve_fails_its_check(pi_cli, tmp_path):
    with ScriptedServer([Reply(text="Looks fine to me.")]) as server:
        live = run_live_pi(_cfg(), PiEndpoint(server.base_url, "scripted"), "tuned", [_task()], tmp_path)
    [ep] = live.episodes
    assert not ep.success and ep.ended_by == "reply" and ep.turns == 1 and ep.tool_calls == 0
    assert "FAILED" in ep.check_output
    assert live.summary()["success_rate"] == 0.0


def test_an_episode_past_its_time_limit_is_stopped_and_scored(pi_cli, tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        live = run_live_pi(_cfg().model_copy(update={"episode_timeout_s": 3}), PiEndpoint(url, "m"), "base",
                           [_task()], tmp_path)
    [ep] = live.episodes
    assert ep.ended_by == "timeout" and not ep.success and "time limit" in ep.error
    assert live.summary()["ended_by"]["timeout"] == 1


def test_unknown_harness_is_refused():
    with pytest.raises(ConfigError, match="harness"):
        load_config(overrides=['eval.live.harness="codex"'])
    assert load_config().eval.live is None
    assert load_config(**{"eval.live.harness": "pi"}).eval.live.harness == "pi"
    assert LiveConfig().harness == "builtin"


def test_cli_refuses_an_unknown_harness(tmp_path):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    res = CliRunner().invoke(app, ["eval", "--prepared", str(tmp_path), "--out", str(tmp_path / "o"),
                                   "--base", "m", "--harness", "codex"])
    assert isinstance(res.exception, ConfigError)  # main() prints it without a traceback
    assert "eval.live.harness" in str(res.exception) and "'builtin' or 'pi'" in str(res.exception)


def _prepared(tmp_path: Path) -> Path:
    tools = (ToolSpec("read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}}),)
    ep = Episode("e0", (Message("user", "read app.py"),
                        Message("assistant", "", (ToolCall("c1", "read", {"path": "app.py"}),), trainable=True)))
    (tmp_path / "eval_episodes.jsonl").write_text(json.dumps(episode_to_wire(ep, tools)) + "\n")
    (tmp_path / "student.json").write_text(json.dumps({"max_length": 2048}))
    return tmp_path


class FixedReply:
    name = "base"

    def generate(self, requests):
        return [Generation(raw="ok", message=Message(role="assistant", content="ok"), completion_tokens=1) for _ in requests]

    def count_prompt_tokens(self, request) -> int:
        return 10

    def close(self):
        pass


def test_missing_pi_is_refused_before_any_model_loads(tmp_path, monkeypatch):
    from tracetune.eval.stage import evaluate

    opened = []
    monkeypatch.setattr(BackendSet, "open", lambda self, role: opened.append(role) or FixedReply())
    monkeypatch.setenv("TRACETUNE_PI_BIN", str(tmp_path / "missing.js"))
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/node" if name == "node" else None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tracetune.eval.harness.pi_cli._roots", lambda: [tmp_path])
    cfg = EvalConfig(models=["base"], live=_cfg())
    with pytest.raises(TracetuneError, match="pi coding agent CLI is not installed"):
        evaluate(cfg, _prepared(tmp_path), "base-model", None, tmp_path / "out")
    assert opened == [] and not (tmp_path / "out").exists()


def test_missing_serve_extra_is_refused_before_any_model_loads(pi_cli, tmp_path, monkeypatch):
    from tracetune.errors import MissingExtraError
    from tracetune.eval.stage import evaluate

    opened = []
    monkeypatch.setattr(BackendSet, "open", lambda self, role: opened.append(role) or FixedReply())
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("fastapi", "uvicorn") else real_find_spec(name, *a))
    with pytest.raises(MissingExtraError, match="serve"):
        evaluate(EvalConfig(models=["base"], live=_cfg()), _prepared(tmp_path), "base-model", None, tmp_path / "out")
    assert opened == []


def test_an_endpoint_pi_cannot_be_sandboxed_with_is_refused_before_any_model_loads(pi_cli, tmp_path, monkeypatch):
    from tracetune.eval.stage import evaluate

    opened = []
    monkeypatch.setattr(BackendSet, "open", lambda self, role: opened.append(role) or FixedReply())
    cfg = EvalConfig(models=["base"], backend={"kind": "openai", "base_url": "https://api.example.com/v1"},
                     live=LiveConfig(harness="pi"))
    with pytest.raises(TracetuneError, match="sandbox") as exc:
        evaluate(cfg, _prepared(tmp_path), "some-model", None, tmp_path / "out")
    assert "allow_unsandboxed" in exc.value.hint and opened == []


def test_cli_eval_with_harness_pi_against_a_served_endpoint(pi_cli, tmp_path, monkeypatch):
    """The whole stage through the CLI: an `openai` backend is used as served, no server is started."""
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    monkeypatch.setattr(BackendSet, "open", lambda self, role: FixedReply())  # fidelity only
    task = _task()
    out = tmp_path / "out"
    with ScriptedServer(_replies(task)) as server:
        res = CliRunner().invoke(app, [
            "eval", "--prepared", str(_prepared(tmp_path)), "--out", str(out), "--base", "scripted",
            "--backend", "openai", "--base-url", server.base_url, "--harness", "pi", "--max-samples", "1",
            "--set", 'eval.models=["base"]', "--set", 'eval.live.task_ids=["fix-add"]', "--set", 'eval.live.splits=["train"]',
            "--set", f"eval.live.allow_unsandboxed={str(NO_BWRAP).lower()}"])
    assert res.exit_code == 0, res.output
    assert "live (base): success 1/1" in res.output
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["config"]["live"]["harness"] == "pi"
    assert results["live"]["base"]["episodes"][0]["success"] is True
    assert list((out / "live" / "sessions" / "base").glob("*.jsonl"))


def test_tuned_side_serves_the_runs_merged_model_when_newer(tmp_path):
    import os

    from tracetune.eval.config import BackendConfig
    from tracetune.eval.live import pi_endpoints

    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    backends = BackendSet(BackendConfig(), "base", run / "adapter")
    assert pi_endpoints._model_folder("tuned", backends, tmp_path, print) == run / "merged"
    os.utime(run / "merged" / "config.json", (1, 1))  # older than the adapter: it would be merged afresh
    assert not pi_endpoints._newer(run / "merged" / "config.json", run / "adapter")
    assert pi_endpoints._model_folder("base", BackendSet(BackendConfig(), str(run), None), tmp_path, print) == run


def test_served_folder_carries_the_template_the_stage_renders_with(tiny_student, tmp_path):
    from transformers import AutoConfig

    from tracetune.eval.config import BackendConfig
    from tracetune.eval.live import pi_endpoints
    from tracetune.engines.tokenizer import load_tokenizer

    assert pi_endpoints._rendered(tiny_student, BackendSet(BackendConfig(), str(tiny_student)), tmp_path / "a") == tiny_student
    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    backends = BackendSet(BackendConfig(), str(tiny_student), tokenizer_path=tiny_student, chat_template=template)
    folder = pi_endpoints._rendered(tiny_student, backends, tmp_path / "served")
    assert folder == tmp_path / "served" and (folder / "config.json").is_symlink()
    assert AutoConfig.from_pretrained(folder).model_type == AutoConfig.from_pretrained(tiny_student).model_type
    tokenizer = load_tokenizer(folder)
    assert tokenizer.chat_template == template
    assert tokenizer.response_template == load_tokenizer(tiny_student).response_template  # tool calls still parse
    assert load_tokenizer(tiny_student).chat_template != template  # the student's own folder is untouched


@pytest.mark.slow
def test_stage_runs_the_served_tiny_student_with_pi(pi_cli, tiny_student, tmp_path):
    """Base served as it is, tuned merged from a random LoRA adapter into a temp folder; pi drives both."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("the serving extra is not installed: pip install 'tracetune[serve]'")
    if NO_BWRAP:
        pytest.skip("bubblewrap (bwrap) is not installed: a model's commands run only sandboxed")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tracetune.eval.stage import evaluate

    torch.manual_seed(1)
    adapter = tmp_path / "run" / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_student),
                   LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter)
    live = LiveConfig(harness="pi", task_ids=["fix-add"], splits=["train"], max_new_tokens=8, episode_timeout_s=120)
    cfg = EvalConfig(max_samples=1, max_new_tokens=4, backend={"device": "cpu"}, live=live)
    result = evaluate(cfg, _prepared(tmp_path), str(tiny_student), adapter, tmp_path / "out")
    results = json.loads(result.results_path.read_text())
    assert set(results["live"]) == {"base", "tuned"}
    for role in ("base", "tuned"):
        [ep] = results["live"][role]["episodes"]
        assert ep["task_id"] == "fix-add" and ep["turns"] >= 1 and ep["success"] is False
        assert 0 < ep["completion_tokens"] <= 8 * ep["turns"]  # pi's max tokens reach the server
        path = Path(ep["session_path"])
        assert path.parent == tmp_path / "out" / "live" / "sessions" / role
        [session] = pi.read(path)
        assert session.warnings == ()
        assistant = [m for m in session.episodes[0].messages if m.role == "assistant"]
        assert assistant and assistant[0].model == f"tracetune/{role}"
    assert not (tmp_path / "run" / "merged").exists()  # merged into a temporary folder, not the run
