"""What keeps the demo's eval short: the transformers backend reuses KV caches, and the outputs do not change.

Every fidelity sample shares the system prompt and tool definitions, and every live turn repeats the
previous turn's context; the backend computes such a shared prefix once (docs/benchmarks.md, demo).
"""

from __future__ import annotations

import pytest

from tracetune.eval.backends.base import GenerationRequest

TOOLS = [{"type": "function", "function": {"name": "read", "description": "Read a file.",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                          "required": ["path"]}}}]
SYSTEM = {"role": "system", "content": "You are a coding agent working in a project directory. " * 4}


def _request(*turns: str, max_new_tokens: int = 6) -> GenerationRequest:
    messages = [SYSTEM] + [{"role": "user" if k % 2 == 0 else "assistant", "content": t} for k, t in enumerate(turns)]
    return GenerationRequest(messages=messages, tools=TOOLS, max_new_tokens=max_new_tokens)


@pytest.fixture(scope="module")
def backends(tiny_student):
    from tracetune.eval.backends.transformers_backend import TransformersBackend

    return (TransformersBackend(tiny_student, device="cpu", batch_size=4),
            TransformersBackend(tiny_student, device="cpu", batch_size=4, reuse_cache=False))


def test_a_batch_shares_its_prefix_and_answers_as_left_padding_does(backends):
    cached, plain = backends
    reqs = [_request("read a.py please " * k) for k in (3, 1, 2, 5)]
    together = cached.generate(reqs)
    assert [g.raw for g in together] == [g.raw for g in plain.generate(reqs)]
    assert [g.prompt_tokens for g in together] == [plain.count_prompt_tokens(r) for r in reqs]
    assert cached._kept is not None and len(cached._kept[0]) > 40  # the shared system prompt and tools


def test_live_turns_reuse_the_previous_context(backends, monkeypatch):
    cached, plain = backends
    turns = ["fix the bug in a.py", "Let me look.", "done? check b.py too", "Checking b.py.", "and c.py"]
    fed: list[int] = []
    forward = cached.model.forward

    def counting(*args, **kwargs):
        fed.append(kwargs["input_ids"].shape[1] if "input_ids" in kwargs else args[0].shape[1])
        return forward(*args, **kwargs)

    monkeypatch.setattr(cached.model, "forward", counting)
    for k in (1, 3, 5):  # a growing conversation, one request at a time, as the live loop sends it
        req = _request(*turns[:k])
        fed.clear()
        got = cached.generate([req])[0]
        assert got.raw == plain.generate([req])[0].raw
        if k > 1:  # only what the previous turn did not hold is computed again
            assert fed[0] < cached.count_prompt_tokens(req) // 2, fed


def test_a_new_prompt_after_a_live_turn_starts_clean(backends):
    cached, plain = backends
    cached.generate([_request("fix the bug in a.py")])
    other = GenerationRequest(messages=[{"role": "user", "content": "hello"}], tools=[], max_new_tokens=5)
    assert cached.generate([other])[0].raw == plain.generate([other])[0].raw


def test_an_adapter_model_reuses_the_cache_too(tiny_student, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tracetune.eval.backends.transformers_backend import TransformersBackend

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_student),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(tmp_path)
    reqs = [_request("read a.py please " * k) for k in (1, 2)]
    cached = TransformersBackend(tiny_student, tmp_path, device="cpu")
    plain = TransformersBackend(tiny_student, tmp_path, device="cpu", reuse_cache=False)
    assert [g.raw for g in cached.generate(reqs)] == [g.raw for g in plain.generate(reqs)]
    assert [cached.generate([r])[0].raw for r in reqs] == [plain.generate([r])[0].raw for r in reqs]
