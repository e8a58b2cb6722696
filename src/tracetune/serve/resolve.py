"""What ``tracetune serve`` serves: a run folder, a model folder, an adapter folder or a Hub id.

``resolve_target(spec)`` turns the user's argument into a ``ServeTarget``:

- a run folder (it holds ``manifest.json``): its merged model
  (``publish/merged``) when the run exported one, else the selected adapter
  (``publish/adapter``, or the sweep winner's ``variants/<name>/adapter``) on
  the run's student;
- a folder written by ``save_pretrained`` (``config.json``): served as is;
- a LoRA adapter folder (``adapter_config.json``): the base it names, plus the
  adapter (vLLM serves that directly; ``transformers serve`` needs it merged);
- anything else that looks like ``owner/name`` and is not a local path: a Hub
  model id (checked only once downloaded).

Each local target says whether it carries a chat template and a
``response_template`` (without one, ``transformers serve`` streams tool-call
markers as plain text and an agent sees no tool calls). Reading only: nothing
here writes to the folders it looks at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tracetune.errors import TracetuneError

TargetKind = Literal["model", "adapter", "hub"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
TEMPLATE_FILE = "chat_template.jinja"
DEFAULT_CONTEXT = 32768


@dataclass(frozen=True)
class TemplateInfo:
    """The chat template and response template a tokenizer folder carries (None: not checked)."""

    has_chat_template: bool | None = None
    has_response_template: bool | None = None
    template_file: Path | None = None  # a standalone .jinja file, for ``vllm serve --chat-template``
    writes_tool_call_tags: bool | None = None  # the template renders ``<tool_call>`` (vLLM's hermes parser)


@dataclass(frozen=True)
class ServeTarget:
    kind: TargetKind
    model: str  # the folder or Hub id to load (for an adapter: its base)
    origin: str  # where it came from, in words
    adapter: Path | None = None
    template: TemplateInfo = field(default_factory=TemplateInfo)
    context_window: int = DEFAULT_CONTEXT


def resolve_target(spec: str | Path) -> ServeTarget:
    """The model to serve for a run folder, model folder, adapter folder or Hub id."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        return _from_folder(path.resolve())
    if path.exists():
        raise TracetuneError(f"{text} is a file, not a model or run folder",
                             hint="pass a run folder (runs/NAME), a merged model folder or a Hub model id")
    if _looks_local(text) or not HUB_ID.match(text):
        raise TracetuneError(f"{text}: no such folder",
                             hint="pass a run folder (runs/NAME), a merged model folder or a Hub model id (owner/name)")
    return ServeTarget("hub", text, f"Hub model {text}")


def _looks_local(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text


def _from_folder(folder: Path) -> ServeTarget:
    if (folder / "manifest.json").is_file():
        return _from_run(folder)
    if (folder / "adapter_config.json").is_file():
        return _from_adapter(folder, f"adapter {folder}")
    if (folder / "config.json").is_file():
        return model_target(folder, f"model folder {folder}")
    raise TracetuneError(
        f"{folder} is neither a run folder (manifest.json), a model folder (config.json) nor a LoRA adapter "
        "(adapter_config.json)",
        hint="pass the folder `tracetune run` wrote, or a folder written by save_pretrained",
    )


def _from_run(run: Path) -> ServeTarget:
    merged = run / "publish" / "merged"
    if (merged / "config.json").is_file():
        return model_target(merged, f"run {run.name}: merged model publish/merged")
    adapter = _run_adapter(run)
    if adapter is not None:
        return _from_adapter(adapter, f"run {run.name}: adapter {adapter.relative_to(run)}", run=run)
    raise TracetuneError(
        f"{run}: this run has no trained model yet (no publish/merged, no selected adapter)",
        hint=f"finish the run first (`tracetune run` resumes it); its stages: {_stage_status(run)}",
    )


def _run_adapter(run: Path) -> Path | None:
    exported = run / "publish" / "adapter"
    if (exported / "adapter_config.json").is_file():
        return exported
    if not (run / "sweep" / "selection.json").is_file():
        return None
    from tracetune.sweep.selection import selected_adapter

    adapter = selected_adapter(run / "sweep")
    return adapter if (adapter / "adapter_config.json").is_file() else None


def _stage_status(run: Path) -> str:
    try:
        status = json.loads((run / "manifest.json").read_text("utf-8")).get("stage_status") or {}
    except (OSError, ValueError):
        return "manifest.json unreadable"
    return ", ".join(f"{k} {v}" for k, v in status.items()) or "none recorded"


def _from_adapter(adapter: Path, origin: str, run: Path | None = None) -> ServeTarget:
    """The adapter on its base; the adapter's own tokenizer files (saved with it) decide the template."""
    from tracetune.engines.merge import adapter_base

    base = _local_base(adapter_base(adapter), adapter, run)
    template_home = adapter if (adapter / "tokenizer_config.json").is_file() else Path(base)
    template = template_info(template_home) if template_home.is_dir() else TemplateInfo()
    context = _context_window(Path(base)) if Path(base).is_dir() else DEFAULT_CONTEXT
    return ServeTarget("adapter", base, origin, adapter=adapter, template=template, context_window=context)


def _local_base(base: str, adapter: Path, run: Path | None) -> str:
    """The base named in ``adapter_config.json``; a run's own student when that folder has moved."""
    path = Path(base).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if run is not None and (run / "student" / "config.json").is_file():
        return str((run / "student").resolve())
    if _looks_local(base) or not HUB_ID.match(base):
        raise TracetuneError(f"the base model of {adapter} ({base}) is not there any more",
                             hint="edit base_model_name_or_path in adapter_config.json to where the base model is now")
    return base


def model_target(folder: Path, origin: str) -> ServeTarget:
    """A local folder written by ``save_pretrained``."""
    return ServeTarget("model", str(folder), origin, template=template_info(folder),
                       context_window=_context_window(folder))


def template_info(folder: Path) -> TemplateInfo:
    """Which templates a tokenizer folder carries (``tokenizer_config.json``, ``chat_template.jinja``)."""
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        config = {}
    template_file = folder / TEMPLATE_FILE
    text = template_file.read_text("utf-8", errors="replace") if template_file.is_file() else ""
    inline = config.get("chat_template")
    if not text and isinstance(inline, str):
        text = inline
    return TemplateInfo(
        has_chat_template=bool(text or inline or (folder / "chat_template.json").is_file()),
        has_response_template=bool(config.get("response_template")),
        template_file=template_file if template_file.is_file() else None,
        writes_tool_call_tags=("<tool_call>" in text) if text else None,
    )


def _context_window(folder: Path) -> int:
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return DEFAULT_CONTEXT
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_CONTEXT
