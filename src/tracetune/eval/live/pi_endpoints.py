"""Where pi finds each model side: an endpoint already served, or a local folder served for the run.

- ``openai`` backend: its ``base_url`` and model names, nothing started.
- ``vllm`` backend: the ``vllm serve`` the backend set starts (base model
  plus the adapter as a LoRA module).
- ``transformers`` backend: ``transformers serve`` on a local folder, one
  side at a time. The base side serves the base model; the tuned side serves
  the run's merged model (``ADAPTER/../merged``) when it is newer than the
  adapter, else the adapter merged into a temporary folder. When the eval
  stage renders with another tokenizer or chat template (the adapter's
  tokenizer, prepare's template), the served folder is the model's files
  (linked) plus that tokenizer, so pi's model sees what the built-in loop's does.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from tracetune.errors import TracetuneError
from tracetune.eval.backends import BackendSet
from tracetune.eval.live.pi_harness import PiEndpoint

_TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                    "chat_template.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model"}


@contextmanager
def pi_endpoint(role: str, backends: BackendSet, scratch: Path,
                log: Callable[[str], None] = lambda _m: None) -> Iterator[PiEndpoint]:
    """The endpoint serving ``role`` ("base" or "tuned") while the block runs."""
    kind = backends.config.kind
    if kind in ("openai", "vllm"):
        yield _remote(role, backends)
        return
    from tracetune.engines.serve import TransformersServer

    folder = _rendered(_model_folder(role, backends, scratch, log), backends, scratch / f"served_{role}")
    log(f"live loop ({role}): serving {folder} with `transformers serve`")
    device = backends.config.device
    with TransformersServer(folder, name=role, device=device, log_path=scratch / f"serve_{role}.log") as server:
        yield PiEndpoint(server.base_url, server.model_name)


def _remote(role: str, backends: BackendSet) -> PiEndpoint:
    url = backends.served_url()
    name = backends.served_name(role)  # type: ignore[arg-type]
    if not url or not name:
        raise TracetuneError(f"the pi harness needs the server's URL and the {role} model's name",
                             hint="set eval.backend.base_url and eval.backend.tuned_model_name")
    key = os.environ.get(backends.config.api_key_env) if backends.config.kind == "openai" else None
    return PiEndpoint(url, name, key)


def _model_folder(role: str, backends: BackendSet, scratch: Path, log: Callable[[str], None]) -> Path:
    if role == "base":
        return local_model(backends.base_model)
    adapter = backends.adapter_dir
    if adapter is None:
        raise TracetuneError("the tuned model was asked for, but no adapter was given", hint="pass --adapter DIR")
    merged = adapter.parent / "merged"
    if _newer(merged / "config.json", adapter):
        return merged
    from tracetune.engines.merge import merge_adapter

    log(f"live loop (tuned): merging {adapter} into a temporary folder to serve it")
    return merge_adapter(adapter, scratch / "merged_tuned", base=backends.base_model)


def local_model(model: str) -> Path:
    """A local folder for a model folder or hub id (the hub cache, downloading unless offline)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model))
    except (OSError, ValueError) as exc:  # not found, offline, invalid id
        raise TracetuneError(f"cannot get {model} as a local folder to serve: {type(exc).__name__}: {exc}",
                             hint="pass --base a local model folder") from exc


def _newer(marker: Path, adapter: Path) -> bool:
    weights = [p for p in adapter.glob("adapter_model.*") if p.is_file()] or [adapter / "adapter_config.json"]
    return marker.is_file() and marker.stat().st_mtime >= max(p.stat().st_mtime for p in weights if p.exists())


def _rendered(model_dir: Path, backends: BackendSet, dest: Path) -> Path:
    """``model_dir``, or a folder linking its files beside the tokenizer and template the eval stage renders with."""
    tokenizer, template = backends.tokenizer_path, backends.chat_template
    if tokenizer is None and template is None:
        return model_dir
    from tracetune.engines.tokenizer import load_tokenizer

    dest.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        if item.name not in _TOKENIZER_FILES:
            (dest / item.name).symlink_to(item.resolve())
    load_tokenizer(tokenizer or model_dir, chat_template=template).save_pretrained(dest)
    return dest
