"""Which modules LoRA adapts: the attention and MLP projections of the language decoder.

Scope: any transformers causal LM, including multimodal wrappers (Gemma 3/4,
Llava, Qwen-VL style ``*ForConditionalGeneration``) whose vision or audio
towers reuse the same leaf names (``q_proj`` ...) or wrap their Linear layers
(Gemma 4's ``q_proj.linear``). Only modules inside the language decoder (found
with ``model.get_decoder()``, else by excluding vision/audio/projector paths)
are adapted; embeddings, ``lm_head`` and per-layer side projections are not.

When the chosen leaf names occur only in the decoder, PEFT gets the short
list (``["q_proj", ...]``, what serving engines expect); otherwise a regex
anchored at the decoder's path, so no tower module is touched.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tracetune.errors import TracetuneError

#: Leaf names of attention and MLP projections across decoder families.
PROJECTIONS: tuple[str, ...] = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",  # Llama, Qwen, Gemma, Mistral
    "qkv_proj", "gate_up_proj",  # Phi-3
    "query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h",  # GPT-NeoX, Falcon
    "c_attn", "c_proj", "c_fc",  # GPT-2 (Conv1D)
    "Wqkv", "out_proj", "fc1", "fc2",  # Phi-1/2, MPT
)

#: Path parts that belong to non-text towers, used when a model has no ``get_decoder``.
NON_TEXT_PARTS = ("vision", "visual", "audio", "image", "speech", "projector", "embed_vision", "embed_audio")


@dataclass(frozen=True)
class LoraTargets:
    """What LoRA will adapt, and what PEFT is told."""

    decoder_path: str  # "" when the model is the decoder itself
    modules: tuple[str, ...]  # full names of every adapted module
    leaf_names: tuple[str, ...]
    peft_target: list[str] | str  # list of leaf names, or a full-match regex
    outside: dict[str, int] = field(default_factory=dict)  # Linear modules left alone, by top-level path

    def summary(self) -> str:
        """One line for people: how many modules are adapted, where, and their leaf names."""
        where = self.decoder_path or "(model root)"
        return f"{len(self.modules)} modules in {where}: {', '.join(self.leaf_names)}"


def _is_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


def find_decoder_path(model: Any) -> str:
    """Dotted path of the language decoder inside ``model`` ("" when it is the model itself)."""
    names = {id(mod): name for name, mod in model.named_modules()}
    getter = getattr(model, "get_decoder", None)
    if callable(getter):
        try:
            decoder = getter()
        except (AttributeError, NotImplementedError, TypeError):
            decoder = None
        if decoder is not None and id(decoder) in names:
            return names[id(decoder)]
    for name in names.values():
        if name.split(".")[-1] in ("language_model", "text_model"):
            return name
    return ""


def _inside(name: str, prefix: str) -> bool:
    if prefix and not (name == prefix or name.startswith(prefix + ".")):
        return False
    rest = name[len(prefix):].lower()
    return not any(part in rest for part in NON_TEXT_PARTS)


def _suffix_match(name: str, target: str) -> bool:
    """PEFT's rule for a list entry: the full name, or a dotted suffix of it."""
    return name == target or name.endswith("." + target)


def resolve_lora_targets(model: Any, override: list[str] | None = None) -> LoraTargets:
    """Adapted modules for ``model``; raises ``TracetuneError`` listing candidates when none match."""
    prefix = find_decoder_path(model)
    all_modules = [(name, mod) for name, mod in model.named_modules() if name]
    linear = [name for name, mod in all_modules if _is_linear(mod)]
    in_decoder = [n for n in linear if _inside(n, prefix)]
    wanted = override if override is not None else list(PROJECTIONS)
    chosen = [n for n in in_decoder if any(_suffix_match(n, t) for t in wanted)]
    if override is not None:
        missing = [t for t in override if not any(_suffix_match(n, t) for n in in_decoder)]
        if missing:
            raise _no_match_error(f"target_modules {missing} match no Linear module of the language decoder", in_decoder, prefix)
    if not chosen:
        raise _no_match_error("no attention or MLP projection found to adapt with LoRA", in_decoder, prefix)

    leaves = tuple(dict.fromkeys(n.split(".")[-1] for n in chosen))
    chosen_set = set(chosen)
    clash = [n for n, _ in all_modules if n.split(".")[-1] in leaves and n not in chosen_set]
    if clash:
        anchor = re.escape(prefix) + r"\." if prefix else ""
        peft_target: list[str] | str = rf"^{anchor}(?:.*\.)?(?:{'|'.join(map(re.escape, leaves))})$"
    else:
        peft_target = list(leaves)
    outside = Counter(_top(n) for n in linear if n not in chosen_set)
    return LoraTargets(prefix, tuple(chosen), leaves, peft_target, dict(outside))


def _top(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def _no_match_error(message: str, in_decoder: list[str], prefix: str) -> TracetuneError:
    counts = Counter(n.split(".")[-1] for n in in_decoder)
    listed = ", ".join(f"{leaf} (x{c})" for leaf, c in counts.most_common()) or "none"
    return TracetuneError(
        f"{message}. Linear modules in the language decoder ({prefix or 'model root'}): {listed}",
        hint="set target_modules to some of these names (e.g. --target-modules q_proj,v_proj)",
    )
