"""Students: the offline tiny student used by tests and the demo, and safe tokenizer loading.

``build_tiny_student`` makes a few-million-parameter Qwen2 decoder with a
byte-level BPE tokenizer trained on the spot from a built-in corpus, and the
package's ChatML-with-tools chat template (``prepare/chat_templates/chatml_tools.jinja``).
Everything is a function of the seed: two builds with one seed give the same
bytes. The model is untrained (random weights); it exists so every stage can
run end to end without a hub.

``load_tokenizer`` guards against the class trap of ``AutoTokenizer`` (a
``qwen2`` config selects Qwen's tokenizer class, which rebuilds the saved
pre-tokenizer): the tiny student is trained with Qwen2's own pipeline so both
agree, and any local folder whose ids disagree is loaded verbatim instead.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from tracetune.prepare.chat_template import response_template
from tracetune.train.tiny_corpus import corpus_lines

#: Tokens that always stay whole. The first three are special (skipped when decoding with
#: ``skip_special_tokens``), the markers stay visible in decoded text so tool calls parse back.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MARKER_TOKENS = (
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
    "<tools>", "</tools>", "<think>", "</think>",
)

#: How ``parse_response`` reads the tiny student's (and the ChatML-with-tools template's) output.
RESPONSE_TEMPLATE: dict[str, Any] = response_template("<|im_start|>assistant\n", ("<|im_end|>", "<|endoftext|>"))


def chat_template_text(name: str = "chatml_tools") -> str:
    """A chat template shipped in ``tracetune/prepare/chat_templates/``."""
    return resources.files("tracetune.prepare").joinpath("chat_templates", f"{name}.jinja").read_text("utf-8")


def train_tokenizer(vocab_size: int = 4000, seed: int = 0):
    """A byte-level BPE trained on the built-in corpus, wrapped as a transformers tokenizer.

    It uses the exact normalizer / pre-tokenizer pipeline of ``Qwen2Tokenizer``,
    so ``AutoTokenizer`` (which rebuilds that pipeline for a ``qwen2`` config)
    gives the same ids as the saved ``tokenizer.json``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus_lines(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=[SPECIAL_TOKENS[1]],
    )
    fast.add_tokens(list(MARKER_TOKENS), special_tokens=False)
    fast.chat_template = chat_template_text()
    fast.response_template = RESPONSE_TEMPLATE
    return fast


def build_tiny_student(
    out_dir: str | Path,
    seed: int = 0,
    *,
    vocab_size: int = 4000,
    hidden_size: int = 192,
    num_layers: int = 4,
    num_heads: int = 4,
    max_positions: int = 32768,
) -> Path:
    """Build and save the tiny student (model + tokenizer + chat template) into ``out_dir``.

    Deterministic for a seed: the corpus, the BPE merges and the initial weights
    all derive from it. Returns ``out_dir``.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(vocab_size, seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 3,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, max_new_tokens=256
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "tracetune_student.json").write_text(
        json.dumps(
            {"kind": "tiny", "seed": seed, "parameters": model.num_parameters(), "vocab_size": len(tokenizer)}, indent=2
        )
    )
    return out


def student_summary(path: str | Path) -> str:
    """One line about a student folder built by tracetune (parameters, vocabulary)."""
    info_path = Path(path) / "tracetune_student.json"
    info = json.loads(info_path.read_text("utf-8")) if info_path.exists() else {}
    parts = [info.get("kind", "student")]
    if "parameters" in info:
        parts.append(f"{info['parameters'] / 1e6:.1f}M parameters")
    if "vocab_size" in info:
        parts.append(f"vocab {info['vocab_size']}")
    return ", ".join(parts)
