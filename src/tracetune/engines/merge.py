"""Merge a LoRA adapter into its base model and save a plain transformers model.

The base is loaded in full precision (bf16 where the saved base is bf16),
never 4-bit, so an adapter trained with QLoRA merges into real weights.
The tokenizer saved beside the adapter (chat template included) travels with
the merged model.
"""

from __future__ import annotations

import json
from pathlib import Path

from tracetune.engines.loading import load_kwargs
from tracetune.errors import TracetuneError


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model id or path an adapter was trained on (from ``adapter_config.json``)."""
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.exists():
        raise TracetuneError(f"{adapter_dir} is not a LoRA adapter (no adapter_config.json)", hint="pass OUT/adapter of a train run")
    base = json.loads(path.read_text("utf-8")).get("base_model_name_or_path")
    if not base:
        raise TracetuneError(f"{path} does not name its base model", hint="pass base= explicitly")
    return base


def load_adapted(adapter_dir: str | Path, base: str | None = None):
    """The base model with the adapter attached (``PeftModel``), in eval mode."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = base or adapter_base(adapter_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype="auto", **load_kwargs())
    except OSError as exc:
        raise TracetuneError(f"cannot load the base model {base}: {exc}", hint="pass base= a local model folder") from exc
    return PeftModel.from_pretrained(model, str(adapter_dir)).eval()


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> Path:
    """Write ``out_dir``: the merged model plus the adapter's tokenizer; returns ``out_dir``."""
    from tracetune.engines.tokenizer import load_tokenizer

    out = Path(out_dir)
    merged = load_adapted(adapter_dir, base).merge_and_unload()
    merged.save_pretrained(out)
    tokenizer_source = adapter_dir if (Path(adapter_dir) / "tokenizer_config.json").exists() else (base or adapter_base(adapter_dir))
    load_tokenizer(tokenizer_source).save_pretrained(out)
    return out
