"""LoRA target resolution on tiny configs built locally (no weights, no hub)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from tracetune.errors import TracetuneError  # noqa: E402
from tracetune.train.lora import resolve_lora_targets  # noqa: E402

TEXT = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=8)
PROJ = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def qwen2():
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**TEXT))


def llama():
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**TEXT))


def gemma3_multimodal():
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=32, patch_size=8)
    cfg = transformers.Gemma3Config(text_config=TEXT, vision_config=vision, mm_tokens_per_image=4)
    return transformers.AutoModelForCausalLM.from_config(cfg)


def gemma4_multimodal():
    text = dict(TEXT, vocab_size_per_layer_input=128, hidden_size_per_layer_input=8,
                layer_types=["sliding_attention", "full_attention"], sliding_window=16)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=4, head_dim=8, patch_size=4, position_embedding_size=64)
    audio = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, subsampling_conv_channels=[8, 8], output_proj_dims=32)
    cfg = transformers.Gemma4Config(text_config=text, vision_config=vision, audio_config=audio)
    return transformers.AutoModelForCausalLM.from_config(cfg)


def expected(prefix: str) -> set[str]:
    return {f"{prefix}.layers.{i}.{p}" for i in range(TEXT["num_hidden_layers"]) for p in PROJ}


def adapted_by_peft(model, target) -> set[str]:
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, lora_alpha=4, target_modules=target))
    return {n[: -len(".lora_A")].removeprefix("base_model.model.") for n, _ in wrapped.named_modules() if n.endswith(".lora_A")}


@pytest.mark.parametrize(
    "build, prefix",
    [(qwen2, "model"), (llama, "model"), (gemma3_multimodal, "model.language_model"), (gemma4_multimodal, "model.language_model")],
)
def test_targets_are_decoder_projections_only(build, prefix):
    model = build()
    targets = resolve_lora_targets(model)
    assert targets.decoder_path == prefix
    assert set(targets.modules) == expected(prefix)
    assert adapted_by_peft(model, targets.peft_target) == expected(prefix)


def test_text_only_models_get_plain_leaf_names():
    targets = resolve_lora_targets(qwen2())
    assert targets.peft_target == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize("build", [gemma3_multimodal, gemma4_multimodal])
def test_multimodal_towers_left_alone(build):
    model = build()
    targets = resolve_lora_targets(model)
    assert isinstance(targets.peft_target, str), "towers share leaf names: PEFT needs an anchored regex"
    assert "model.vision_tower" in targets.outside
    assert not any("vision" in n or "audio" in n for n in targets.modules)


def test_naive_leaf_names_break_on_gemma4():
    """The trap the resolver avoids: Gemma 4's vision tower wraps q_proj around a Linear."""
    with pytest.raises(ValueError):
        adapted_by_peft(gemma4_multimodal(), ["q_proj"])


def test_adapted_multimodal_model_still_runs_forward():
    model = gemma3_multimodal()
    targets = resolve_lora_targets(model)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=targets.peft_target))
    out = wrapped(input_ids=torch.tensor([[1, 2, 3, 4]]))
    assert out.logits.shape[-1] == TEXT["vocab_size"]


def test_override_is_restricted_to_the_decoder():
    model = gemma3_multimodal()
    targets = resolve_lora_targets(model, override=["q_proj", "v_proj"])
    assert set(targets.modules) == {n for n in expected("model.language_model") if n.endswith(("q_proj", "v_proj"))}
    assert adapted_by_peft(model, targets.peft_target) == set(targets.modules)


def test_unknown_override_lists_candidates():
    with pytest.raises(TracetuneError) as info:
        resolve_lora_targets(llama(), override=["query"])
    assert "query" in info.value.message
    assert "q_proj" in info.value.message and "down_proj" in info.value.message


def test_model_without_projections_fails_clearly():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(4, 4)
            self.mixer = torch.nn.Linear(4, 4)

    with pytest.raises(TracetuneError) as info:
        resolve_lora_targets(Odd())
    assert "encoder" in info.value.message and "mixer" in info.value.message
    assert info.value.hint


def test_gpt2_conv1d_projections():
    cfg = transformers.GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    model = transformers.GPT2LMHeadModel(cfg)
    targets = resolve_lora_targets(model)
    assert set(targets.leaf_names) == {"c_attn", "c_proj", "c_fc"}
    assert adapted_by_peft(model, targets.peft_target) == set(targets.modules)
