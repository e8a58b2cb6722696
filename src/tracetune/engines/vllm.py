"""The ``vllm serve`` command line for a base model and an optional LoRA adapter (pure).

Used by the eval backend that starts vLLM as its own server process and by ``tracetune serve
--engine vllm``; vLLM itself runs in its own environment, never imported here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class VLLMServeSpec:
    base_model: str
    served_name: str
    adapter_dir: Path | None = None
    lora_name: str = "tuned"
    tokenizer: str | None = None
    chat_template: Path | None = None  # a .jinja file overriding the tokenizer's template
    host: str = "127.0.0.1"
    port: int = 8000
    tool_parser: str = "hermes"
    seed: int = 0
    extra_args: list[str] = field(default_factory=list)
    executable: str = "vllm"


def lora_rank(adapter_dir: Path) -> int | None:
    """The adapter's rank rounded up to a value ``--max-lora-rank`` accepts (None when unknown)."""
    try:
        rank = int(json.loads((adapter_dir / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return next((r for r in LORA_RANKS if r >= rank), rank)


def serve_command(spec: VLLMServeSpec) -> list[str]:
    """The ``vllm serve`` command line for a spec (pure, so it can be checked without vLLM)."""
    cmd = [spec.executable, "serve", spec.base_model, "--host", spec.host, "--port", str(spec.port),
           "--served-model-name", spec.served_name, "--seed", str(spec.seed)]
    if spec.tokenizer:
        cmd += ["--tokenizer", spec.tokenizer]
    if spec.chat_template:
        cmd += ["--chat-template", str(spec.chat_template)]
    if spec.tool_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", spec.tool_parser]
    if spec.adapter_dir is not None:
        cmd += ["--enable-lora", "--lora-modules", f"{spec.lora_name}={spec.adapter_dir}"]
        rank = lora_rank(spec.adapter_dir)
        if rank is not None and rank > 16:
            cmd += ["--max-lora-rank", str(rank)]
    return cmd + list(spec.extra_args)
