"""Offline fidelity end to end: sampling, same samples for base and tuned, aggregates, results.json, HTML."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tracetune.conversation.types import Episode, Message, ToolCall, ToolSpec
from tracetune.conversation.wire import episode_to_wire
from tracetune.eval.backends import BackendSet
from tracetune.eval.backends.base import Generation
from tracetune.eval.config import EvalConfig
from tracetune.eval.aggregate import parse_errors
from tracetune.eval.fidelity import SamplingStats, build_candidates, read_episodes, run_fidelity
from tracetune.eval.inspect_bench import InspectModel, fold_log, run_benchmarks
from tracetune.eval.parsing import parse_output
from tracetune.eval.report import describe_action, headline, render_html, sample_record
from tracetune.eval.stage import evaluate, with_prompt_cap
from tracetune.prepare.config import PrepareConfig
from tracetune.eval.stats import paired_difference, rate, wilson

TOOLS = (
    ToolSpec("read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    ToolSpec("bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
)


def episode(k: int) -> Episode:
    return Episode(f"ep{k}", (
        Message("user", f"fix app{k}.py"),
        Message("assistant", "", (ToolCall("c1", "read", {"path": f"app{k}.py"}),), trainable=True),
        Message("tool", "print('hi')\n" * 20, tool_call_id="c1", name="read"),
        Message("assistant", "", (ToolCall("c2", "bash", {"command": f"python app{k}.py"}),), trainable=True),
        Message("tool", "hi", tool_call_id="c2", name="bash"),
        Message("assistant", "Fixed.", untrainable_reason="aborted"),  # context only: never sampled
        Message("user", "thanks"),
        Message("assistant", "It prints hi now.", trainable=True),
    ))


@pytest.fixture()
def prepared(tmp_path) -> Path:
    lines = [json.dumps(episode_to_wire(episode(k), TOOLS, system_prompt="You are a coding agent.")) for k in range(4)]
    lines.insert(2, "{not json")
    (tmp_path / "eval_episodes.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "student.json").write_text(json.dumps({"max_length": 4096}))
    return tmp_path


class Scripted:
    """A backend whose answer is a function of the context; ``skilled`` copies the teacher's habits."""

    def __init__(self, name: str, skilled: bool):
        self.name, self.skilled, self.closed, self.seen = name, skilled, False, []

    def count_prompt_tokens(self, req) -> int:
        return sum(len(m["content"]) for m in req.messages)

    def generate(self, requests):
        out = []
        for req in requests:
            self.seen.append(req)
            raw = self._answer(req.messages) if self.skilled else '<tool_call>{"name": "open", "arguments": {}}</tool_call>'
            res = parse_output(raw)
            out.append(Generation(raw, res.message, res.error, prompt_tokens=10, completion_tokens=5))
        return out

    @staticmethod
    def _answer(messages) -> str:
        last = messages[-1]
        if last["role"] == "user" and last["content"].startswith("fix "):
            path = last["content"].split()[1]
            return f'<tool_call>{{"name": "read", "arguments": {{"path": "{path}"}}}}</tool_call>'
        if last["role"] == "tool" and last.get("name") == "read":
            return '<tool_call>{"name": "bash", "arguments": {"command": "python app.py"}}</tool_call>'
        return "It prints hi now."

    def close(self):
        self.closed = True


def scripted_open(backends: dict):
    def open_backend(role):
        backends[role] = Scripted(role, skilled=(role == "tuned"))
        return backends[role]
    return open_backend


def test_candidates_are_trainable_turns_with_the_exact_context(prepared):
    stats = SamplingStats()
    samples = build_candidates(read_episodes(prepared / "eval_episodes.jsonl", stats))
    assert stats.bad_lines == 1 and "line 3" in stats.bad_line_reasons[0]
    assert len(samples) == 4 * 3  # the aborted turn is context, not a target
    s = next(x for x in samples if x.id == "ep1#3")
    assert s.teacher.tool_calls[0].name == "bash"
    assert [m["role"] for m in s.messages] == ["system", "user", "assistant", "tool"]
    assert s.messages[0]["content"] == "You are a coding agent."
    assert all("tracetune" not in m for m in s.messages)
    last = next(x for x in samples if x.id == "ep1#7")
    assert last.messages[-2] == {"role": "assistant", "content": "Fixed."}  # the aborted turn stays in context


def test_fidelity_scores_base_and_tuned_on_the_same_seeded_samples(prepared):
    backends: dict = {}
    cfg = EvalConfig(max_samples=5, seed=3)
    run = run_fidelity(cfg, prepared / "eval_episodes.jsonl", scripted_open(backends), {"base": "b", "tuned": "t"})
    ids = [s.id for s in run.samples]
    assert len(ids) == 5 and run.stats.kept == 5 and run.stats.candidates == 12
    assert [r.messages for r in backends["base"].seen] == [r.messages for r in backends["tuned"].seen]
    assert all(b.closed for b in backends.values())
    again = run_fidelity(cfg, prepared / "eval_episodes.jsonl", scripted_open({}), {})
    assert [s.id for s in again.samples] == ids
    other = run_fidelity(cfg.model_copy(update={"seed": 4}), prepared / "eval_episodes.jsonl", scripted_open({}), {})
    assert [s.id for s in other.samples] != ids
    assert all(a.score.tool_match for a, s in zip(run.answers["tuned"], run.samples) if s.teacher.tool_calls)
    assert not any(a.score.known_tool for a in run.answers["base"])


def test_long_contexts_are_skipped_and_counted(prepared):
    cfg = EvalConfig(max_samples=12, max_prompt_tokens=40, long_context="skip")
    run = run_fidelity(cfg, prepared / "eval_episodes.jsonl", scripted_open({}), {})
    assert run.stats.skipped_too_long > 0
    assert run.stats.kept + run.stats.skipped_too_long == run.stats.examined == 12
    assert all(s.index == 1 for s in run.samples)  # only the first turn (system + user) fits


def test_evaluate_writes_results_and_report(prepared, tmp_path, monkeypatch):
    backends: dict = {}
    monkeypatch.setattr(BackendSet, "open", lambda self, role: scripted_open(backends)(role))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    result = evaluate(EvalConfig(max_samples=8, examples=2), prepared, "base-model", adapter, tmp_path / "out")
    results = json.loads(result.results_path.read_text())
    fid = results["fidelity"]
    assert fid["sampling"]["bad_lines"] == 1 and len(fid["sample_ids"]) == 8
    assert results["settings"]["config"]["max_samples"] == 8 and results["settings"]["adapter_dir"] == str(adapter)
    tuned, base = fid["models"]["tuned"]["metrics"], fid["models"]["base"]["metrics"]
    assert tuned["tool_match"]["mean"] == 1.0 and base["tool_match"]["mean"] == 0.0
    assert base["known_tool"]["mean"] == 0.0 and base["parse_rate"]["mean"] == 1.0
    assert fid["tuned_minus_base"]["tool_match"]["low"] > 0
    assert set(fid["models"]["tuned"]["per_tool"]) == {"read", "bash", "(reply)"}
    assert results["models"]["tuned"]["fidelity.tool_match"] == 1.0  # the flat headline model cards read
    sample = fid["samples"][0]
    assert set(sample["outputs"]) == {"base", "tuned"} and sample["outputs"]["base"]["score"]["known_tool"] is False
    html = result.report_path.read_text()
    assert "same tool" in html and "tuned − base" in html and "Side by side" in html
    assert html.count('class="example"') == 2
    assert "open()" in html  # the base model's made-up tool is shown as it was called


def test_evaluate_without_adapter_scores_base_only(prepared, tmp_path, monkeypatch):
    monkeypatch.setattr(BackendSet, "open", lambda self, role: scripted_open({})(role))
    result = evaluate(EvalConfig(max_samples=3), prepared, "base-model", None, tmp_path / "out")
    results = json.loads(result.results_path.read_text())
    assert list(results["fidelity"]["models"]) == ["base"] and "tuned_minus_base" not in results["fidelity"]
    html = render_html(results)
    assert "<th>base</th>" in html and "<th>tuned</th>" not in html and "tuned − base" not in html


def test_statistics():
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    assert wilson(10, 10)[1] == 1.0
    est = rate([True, True, False, None])
    assert est.n == 3 and est.mean == pytest.approx(2 / 3) and est.low < est.mean < est.high
    diff = paired_difference([0.0, 0.0, 1.0, None], [1.0, 1.0, 1.0, 1.0])
    assert diff.n == 3 and diff.mean == pytest.approx(2 / 3) and diff.low >= 0


def test_inspect_is_skipped_without_the_extra():
    results = run_benchmarks(["humaneval", "nope"], [InspectModel("base", "hf/x")], Path("."))
    by_bench = {r.benchmark: r for r in results}
    assert by_bench["nope"].status == "skipped" and "unknown benchmark" in by_bench["nope"].reason
    assert by_bench["humaneval"].status == "skipped" and "tracetune[eval]" in by_bench["humaneval"].reason


def test_inspect_results_fold_into_the_report(tmp_path):
    calls = []

    def fake_eval(task, **kw):
        calls.append((task, kw))
        if kw["model"].endswith("offline"):
            raise ConnectionError("cannot download openai_humaneval\nmore")
        metric = SimpleNamespace(value=0.25 if "base" in kw["model"] else 0.5)
        scores = [SimpleNamespace(name="verify", metrics={"accuracy": metric})]
        return [SimpleNamespace(status="success", results=SimpleNamespace(scores=scores, completed_samples=4, total_samples=4), location="log.eval")]

    models = [InspectModel("base", "hf/base"), InspectModel("tuned", "hf/tuned"), InspectModel("other", "hf/offline")]
    results = run_benchmarks(["humaneval"], models, tmp_path, limit=4, eval_fn=fake_eval)
    assert [r.status for r in results] == ["ok", "ok", "skipped"]
    assert results[2].reason == "ConnectionError: cannot download openai_humaneval"
    assert calls[0][0] == "inspect_evals/humaneval" and calls[0][1]["limit"] == 4
    inspect = [r.to_dict() for r in results]
    flat = headline(None, {}, inspect)
    assert flat["base"]["inspect.humaneval.accuracy"] == 0.25 and flat["tuned"]["inspect.humaneval.accuracy"] == 0.5
    html = render_html({"settings": {"config": EvalConfig().model_dump()}, "inspect": inspect})
    assert "humaneval" in html and "accuracy: 0.500" in html and "cannot download" in html
    failed = fold_log("mbpp", "base", SimpleNamespace(status="error", error=SimpleNamespace(message="boom\ntrace")))
    assert failed.status == "error" and failed.reason == "boom"


def test_live_results_fold_into_headline_and_report():
    live = {"tuned": {"summary": {"episodes": 2, "success_rate": 0.5, "successes": 1, "self_ended_rate": 1.0,
                                  "valid_call_rate": 0.75, "mean_turns": 3.0, "mean_tokens": 900.0},
                      "episodes": [{"task_id": "hello", "split": "heldout", "difficulty": "easy", "success": True,
                                    "ended_by": "reply", "turns": 3, "tool_calls": 2, "valid_calls": 2}]}}
    assert headline(None, live, [])["tuned"]["live.success_rate"] == 0.5
    html = render_html({"settings": {"config": EvalConfig().model_dump()}, "live": live})
    assert "Live agent loop" in html and "hello" in html


def test_describe_action():
    assert describe_action(None, "invalid_json") == "unparsed (invalid_json)"
    assert describe_action(Message("assistant", "")) == "stop (empty message)"
    call = Message("assistant", "", (ToolCall("c", "read", {"path": "a.py"}),))
    assert describe_action(call) == 'read(path="a.py")'
    assert describe_action(Message("assistant", "x" * 500)).endswith("…")


@pytest.mark.slow
def test_evaluate_with_the_tiny_student_and_an_adapter(tiny_student, prepared, tmp_path):
    """The real transformers path: base and an adapter on CPU, a few samples, a few tokens."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    adapter = tmp_path / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_student),
                   LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter)
    cfg = EvalConfig(max_samples=4, max_new_tokens=8, backend={"device": "cpu", "batch_size": 2})
    result = evaluate(cfg, prepared, str(tiny_student), adapter, tmp_path / "out")
    results = json.loads(result.results_path.read_text())
    for sample in results["fidelity"]["samples"]:
        for out in sample["outputs"].values():
            assert out["completion_tokens"] <= 8 and out["prompt_tokens"] > 50
    raws = {role: [s["outputs"][role]["raw"] for s in results["fidelity"]["samples"]] for role in ("base", "tuned")}
    assert raws["base"] != raws["tuned"]
    assert results["settings"]["versions"]["transformers"]


def test_long_contexts_can_be_windowed_like_training(prepared):
    cfg = EvalConfig(max_samples=12, max_prompt_tokens=100, long_context="window")
    run = run_fidelity(cfg, prepared / "eval_episodes.jsonl", scripted_open({}), {})
    # turn 1 fits whole; turn 7 fits once the long read result is left out; turn 3 needs that result: skipped
    assert (run.stats.kept, run.stats.windowed, run.stats.skipped_too_long) == (8, 4, 4)
    windowed = [s for s in run.samples if s.omitted]
    assert {s.index for s in windowed} == {7} and {s.index for s in run.samples if not s.omitted} == {1}
    s = windowed[0]
    assert [m["role"] for m in s.messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert s.messages[1]["content"].startswith("fix app") and "[... 2 earlier messages omitted ...]" in s.messages[1]["content"]
    assert s.messages[-1]["content"] == "thanks"
    assert sum(len(m["content"]) for m in s.messages) <= 100


def test_a_huge_held_out_context_reaches_the_model_cut_to_the_prepared_max_length(tmp_path, monkeypatch):
    """A 100k-token context is windowed from the left to max_prompt_tokens (default: prepare's max_length)."""
    huge = Episode("big", (
        Message("user", "fix app.py"),
        Message("assistant", "", (ToolCall("c1", "read", {"path": "app.py"}),), trainable=True),
        Message("tool", "x" * 100_000, tool_call_id="c1", name="read"),
        Message("assistant", "Done reading.", trainable=True),
        Message("user", "now run it"),
        Message("assistant", "", (ToolCall("c2", "bash", {"command": "python app.py"}),), trainable=True),
    ))
    (tmp_path / "eval_episodes.jsonl").write_text(json.dumps(episode_to_wire(huge, TOOLS, system_prompt="sys")) + "\n")
    (tmp_path / "student.json").write_text(json.dumps({"max_length": 2000}))
    backends: dict = {}
    monkeypatch.setattr(BackendSet, "open", lambda self, role: scripted_open(backends)(role))
    result = evaluate(EvalConfig(max_samples=8, models=["base"]), tmp_path, "base-model", None, tmp_path / "out")
    seen = backends["base"].seen
    assert seen and all(backends["base"].count_prompt_tokens(r) <= 2000 for r in seen)
    sampling = json.loads(result.results_path.read_text())["fidelity"]["sampling"]
    assert sampling["windowed"] >= 1 and sampling["kept"] == len(seen)


LONG_TASK = "fix app.py " + "y" * 3000


def write_long_episode(folder: Path, *more: Message) -> None:
    """An eval split of one Episode: a long task, a 20k-character read result, a bash call, then ``more``."""
    long = Episode("long", (
        Message("user", LONG_TASK),
        Message("assistant", "", (ToolCall("c1", "read", {"path": "app.py"}),), trainable=True),
        Message("tool", "x" * 20_000, tool_call_id="c1", name="read"),
        Message("assistant", "", (ToolCall("c2", "bash", {"command": "python app.py"}),), trainable=True),
        *more,
    ))
    (folder / "eval_episodes.jsonl").write_text(json.dumps(episode_to_wire(long, TOOLS, system_prompt="sys")) + "\n")


def test_a_windowed_context_repeats_the_task_as_the_training_windows_did(tmp_path, monkeypatch):
    """The first user message is clipped to the prepared head_user_chars, not a limit of eval's own."""
    task = LONG_TASK
    write_long_episode(
        tmp_path,
        Message("tool", "ok", tool_call_id="c2", name="bash"),
        Message("assistant", "", (ToolCall("c3", "bash", {"command": "pytest"}),), trainable=True),
    )
    backends: dict = {}
    monkeypatch.setattr(BackendSet, "open", lambda self, role: scripted_open(backends)(role))
    for chars in (40, 1000):
        (tmp_path / "student.json").write_text(json.dumps({"max_length": 2000, "head_user_chars": chars}))
        out = tmp_path / f"out{chars}"
        evaluate(EvalConfig(max_samples=8, models=["base"]), tmp_path, "base-model", None, out)
        samples = json.loads((out / "results.json").read_text())["fidelity"]["samples"]
        windowed = [s for s in samples if s["omitted_messages"]]
        assert windowed and json.loads((out / "results.json").read_text())["settings"]["config"]["head_user_chars"] == chars
        heads = [m["content"] for r in backends["base"].seen for m in r.messages if m["role"] == "user"]
        assert any(h.startswith(task[:chars] + "\n[...]\n\n[... ") for h in heads)
    (tmp_path / "student.json").write_text(json.dumps({"max_length": 2000}))  # prepared before it was recorded
    assert with_prompt_cap(EvalConfig(), tmp_path).head_user_chars == PrepareConfig.model_fields["head_user_chars"].default


def test_a_windowed_context_notes_the_omitted_messages_only_if_the_training_windows_did(tmp_path, monkeypatch):
    """``prepare.window_marker = false`` trains windows without the omitted-messages note; eval follows it."""
    write_long_episode(tmp_path, Message("tool", "ok", tool_call_id="c2", name="bash"),
                       Message("assistant", "", (ToolCall("c3", "bash", {"command": "pytest"}),), trainable=True))
    backends: dict = {}
    monkeypatch.setattr(BackendSet, "open", lambda self, role: scripted_open(backends)(role))
    for marker in (True, False):
        (tmp_path / "student.json").write_text(json.dumps({"max_length": 2000, "head_user_chars": 100, "window_marker": marker}))
        out = tmp_path / f"out-{marker}"
        evaluate(EvalConfig(max_samples=8, models=["base"]), tmp_path, "base-model", None, out)
        windowed = [s for s in json.loads((out / "results.json").read_text())["fidelity"]["samples"] if s["omitted_messages"]]
        heads = [r.messages[1]["content"] for r in backends["base"].seen if r.messages[1]["content"].startswith(LONG_TASK[:100] + "\n[...]")]
        assert windowed and heads
        assert all(("earlier messages omitted" in h) is marker for h in heads)


def test_a_turn_that_fits_only_squeezed_is_squeezed_as_training_windows_are(tmp_path):
    """Eval keeps the turns training keeps: the context texts clipped to the first SQUEEZE_LEVELS level that fits."""
    from tracetune.prepare.conversations import clip_text

    task = LONG_TASK
    write_long_episode(tmp_path)
    cfg = EvalConfig(max_samples=8, max_prompt_tokens=2500, head_user_chars=1000, models=["base"])
    run = run_fidelity(cfg, tmp_path / "eval_episodes.jsonl", scripted_open({}), {})
    assert (run.stats.kept, run.stats.windowed, run.stats.squeezed, run.stats.skipped_too_long) == (2, 2, 2, 0)
    first = next(x for x in run.samples if x.index == 1)  # the task alone is too long: squeezed in place, as training does
    assert first.squeezed == 2000 and first.omitted == 0 and first.messages[1]["content"] == clip_text(task, 2000)[0]
    s = next(x for x in run.samples if x.index == 3)
    assert s.squeezed == 800  # 2000 characters a text is still too long here
    assert s.messages[-1]["content"] == clip_text("x" * 20_000, 800)[0]
    assert s.messages[1]["content"].startswith(clip_text(task[:1000] + "\n[...]", 800)[0] + "\n\n[... 0 earlier")
    assert sum(len(m["content"]) for m in s.messages) <= 2500
    record = sample_record(s, {})
    assert record["squeezed_to_chars"] == 800


def test_cli_eval_prints_the_table_and_writes_files(prepared, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    monkeypatch.setattr(BackendSet, "open", lambda self, role: scripted_open({})(role))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "some/base"}))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["eval", "--prepared", str(prepared), "--adapter", str(adapter), "--out", str(out),
                                   "--max-samples", "6", "--set", "eval.examples=1"])
    assert res.exit_code == 0, res.output
    assert "same tool" in res.output and "tuned − base" in res.output
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["base_model"] == "some/base" and results["settings"]["config"]["examples"] == 1
    assert (out / "report.html").is_file()


class Rambling(Scripted):
    """Talks until the token cap: text that parses, but never ends its turn (like an untrained model)."""

    def generate(self, requests):
        return [Generation("qz vv " * 40, parse_output("qz vv " * 40).message, None, 10, 96, finished=False)
                for _ in requests]


def test_output_cut_at_the_token_cap_does_not_count_as_parsed(prepared):
    def open_backend(role):
        return Rambling(role, skilled=False) if role == "base" else Scripted(role, skilled=True)

    cfg = EvalConfig(max_samples=6, seed=1)
    run = run_fidelity(cfg, prepared / "eval_episodes.jsonl", open_backend, {"base": "b", "tuned": "t"})
    base, tuned = run.answers["base"], run.answers["tuned"]
    assert all(a.generation.message is not None for a in base)  # the text alone would parse as a reply
    assert not any(a.score.parsed for a in base)
    assert {a.score.parse_error for a in base} == {"truncated"}
    assert all(a.score.parsed for a in tuned)
    assert parse_errors(base) == {"truncated": 6}
