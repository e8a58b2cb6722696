"""The tiny student: reproducible, reloadable, and its template speaks tools."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tracetune.engines.tokenizer import load_tokenizer
from tracetune.train.student import build_tiny_student

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
]
CONVERSATION = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "Fix the bug in src/main.py"},
    {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": {"path": "src/main.py"}}}],
    },
    {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "def main():\n    pass"},
    {"role": "assistant", "content": "The function is empty; done."},
]


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja")
    }


def test_same_seed_same_bytes_other_seed_differs(tiny_student, tmp_path):
    again = build_tiny_student(tmp_path / "again", seed=0)
    other = build_tiny_student(tmp_path / "other", seed=1)
    assert _digest(again) == _digest(tiny_student)
    assert len(_digest(again)) == 4
    assert _digest(other)["model.safetensors"] != _digest(tiny_student)["model.safetensors"]


def test_is_small_and_has_a_real_vocabulary(tiny_student):
    info = json.loads((tiny_student / "tracetune_student.json").read_text())
    assert 1_000_000 < info["parameters"] < 5_000_000
    assert 2000 <= info["vocab_size"] <= 4100


def test_reload_model_and_generate(tiny_student, tiny_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    ids = tiny_tokenizer.apply_chat_template(CONVERSATION[:2], add_generation_prompt=True, return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=5, do_sample=False)
    assert out.shape[1] > len(ids)
    assert model.config.vocab_size == len(tiny_tokenizer)


def test_ids_round_trip_through_every_loader(tiny_student, tiny_tokenizer):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    text = tiny_tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False)
    text += "naïve café ✓ 東京 \t\r\n  x = {'a': 1}"
    raw = Tokenizer.from_file(str(tiny_student / "tokenizer.json")).encode(text, add_special_tokens=False).ids
    auto = AutoTokenizer.from_pretrained(tiny_student)(text, add_special_tokens=False)["input_ids"]
    ours = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ours == raw == auto
    assert tiny_tokenizer.decode(ours) == text


def test_template_renders_tools_calls_and_results(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a coding agent.")
    assert '"name": "read", "description": "Read a file"' in text
    assert '<tool_call>\n{"name": "read", "arguments": {"path": "src/main.py"}}\n</tool_call><|im_end|>' in text
    assert "<|im_start|>tool\n<tool_response>\ndef main():\n    pass\n</tool_response><|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\nThe function is empty; done.<|im_end|>\n")
    no_tools = tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert "<tools>" not in no_tools


def test_generation_prompt_and_prefix_stability(tiny_tokenizer):
    for k in range(1, len(CONVERSATION)):
        head = tiny_tokenizer.apply_chat_template(CONVERSATION[:k], tools=TOOLS, tokenize=False, add_generation_prompt=True)
        longer = tiny_tokenizer.apply_chat_template(CONVERSATION[: k + 1], tools=TOOLS, tokenize=False)
        if CONVERSATION[k]["role"] == "assistant":
            assert longer.startswith(head) and head.endswith("<|im_start|>assistant\n")


def test_reasoning_rendered_only_when_present(tiny_tokenizer):
    msgs = CONVERSATION[:2] + [{"role": "assistant", "content": "ok", "reasoning_content": "think first"}]
    assert "<think>\nthink first\n</think>\n\nok<|im_end|>" in tiny_tokenizer.apply_chat_template(msgs, tokenize=False)
    assert "<think>" not in tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False)


def test_tool_calls_parse_back_with_the_saved_response_template(tiny_student, tiny_tokenizer):
    from transformers import AutoTokenizer

    prompt = tiny_tokenizer.apply_chat_template(CONVERSATION[:2], tools=TOOLS, tokenize=False, add_generation_prompt=True)
    full = tiny_tokenizer.apply_chat_template(CONVERSATION[:3], tools=TOOLS, tokenize=False)
    output = full[len(prompt) :].rstrip("\n")
    parsed = AutoTokenizer.from_pretrained(tiny_student).parse_response(output, prefix=prompt)
    assert parsed["content"] == "Let me look."
    assert [c["function"] for c in parsed["tool_calls"]] == [{"name": "read", "arguments": {"path": "src/main.py"}}]


def test_missing_chat_template_is_a_clear_error(tiny_student, tmp_path):
    from tracetune.errors import TracetuneError

    folder = tmp_path / "bare"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        (folder / name).write_bytes((tiny_student / name).read_bytes())
    with pytest.raises(TracetuneError, match="no chat template"):
        load_tokenizer(folder)
    assert load_tokenizer(folder, chat_template=(tiny_student / "chat_template.jinja").read_text()).chat_template


def test_cli_builds_a_student(tmp_path):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    result = CliRunner().invoke(app, ["student", "tiny", "--out", str(tmp_path / "s"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "tiny student" in result.output
    assert (tmp_path / "s" / "model.safetensors").exists()
