"""Export the selected adapter and the merged model locally, as safetensors.

Layout of the export folder::

    adapter/   adapter_config.json + adapter_model.safetensors (+ tokenizer, README.md card)
    merged/    the base model with the adapter merged in: config, safetensors, tokenizer, and its own
               README.md (``library_name: transformers``, ``base_model_relation: merge``)

Both load with ``from_pretrained`` (``PeftModel`` / ``AutoPeftModelForCausalLM``
for the adapter, ``AutoModelForCausalLM`` for ``merged/``). The folder is
built beside its destination and renamed into place.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tracetune.errors import TracetuneError
from tracetune.util.files import replace_dir, temp_dir_for

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    adapter: Path
    merged: Path | None


def check_adapter(adapter_dir: Path) -> None:
    """Raise ``TracetuneError`` unless ``adapter_dir`` holds a LoRA adapter's config and safetensors weights."""
    missing = [f for f in ADAPTER_FILES if not (adapter_dir / f).is_file()]
    if missing:
        raise TracetuneError(
            f"{adapter_dir} is not a complete safetensors LoRA adapter (missing {', '.join(missing)})",
            hint="export needs the adapter folder a finished tracetune train/sweep wrote",
        )


def export_local(
    base_model: str | Path,
    adapter_dir: Path,
    out_dir: Path,
    merge: bool = True,
    card: Path | None = None,
) -> ExportResult:
    """Copy the adapter (and tokenizer, card) and, when ``merge``, write the merged model into ``out_dir``."""
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    check_adapter(adapter_dir)
    tmp = temp_dir_for(out_dir)
    try:
        _copy_adapter(adapter_dir, tmp / "adapter", card)
        if merge:
            _merge(str(base_model), adapter_dir, tmp / "merged")
            if card is not None:
                write_merged_card(card, tmp / "merged")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out_dir)
    return ExportResult(out_dir, out_dir / "adapter", out_dir / "merged" if merge else None)


def _copy_adapter(adapter_dir: Path, dest: Path, card: Path | None) -> None:
    dest.mkdir()
    for name in (*ADAPTER_FILES, *TOKENIZER_FILES):
        if (adapter_dir / name).is_file():
            shutil.copy2(adapter_dir / name, dest / name)
    if card is not None:
        shutil.copy2(card, dest / "README.md")


def write_merged_card(adapter_card: Path, merged_dir: Path, adapter_repo: str | None = None) -> Path:
    """``merged_dir/README.md``: the adapter's card made the merged model's (transformers, ``merge``)."""
    from tracetune.card.model_card import merged_card
    from tracetune.util.files import atomic_write_text

    path = Path(merged_dir) / "README.md"
    atomic_write_text(path, str(merged_card(Path(adapter_card), adapter_repo)))
    return path


def _merge(base_model: str, adapter_dir: Path, dest: Path) -> None:
    from tracetune.engines.merge import merge_adapter

    merge_adapter(adapter_dir, dest, base=base_model)
