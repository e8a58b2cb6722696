"""Which chat template renders the dataset: the student's own, a shipped one, a file, or ``tool-aware``.

``tool-aware`` picks the shipped variant that fits the student's family:
models whose tokenizer has ``<|im_start|>`` / ``<|im_end|>`` get
``chatml_tools``; any other model gets ``generic_tools``, built on its own
special tokens (bos/eos as transformers passes them to every template, role
tokens where the vocabulary has a known set of them, plain ``<|role|>`` text
headers otherwise). Each shipped variant comes with the matching
``response_template`` so ``tokenizer.parse_response`` reads the student's tool
calls back. The chosen text is self-contained (markers are baked in as a
``{% set %}`` line), so it survives ``save_pretrained`` and any engine that
loads the tokenizer renders the same format.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from tracetune.errors import TracetuneError

TOOL_AWARE = "tool-aware"
SHIPPED = ("chatml_tools", "generic_tools")
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
CHATML_ENDS = ("<|im_end|>", "<|endoftext|>")
HINT = "pass --template tool-aware, a shipped name ('chatml_tools', 'generic_tools') or a .jinja file"


@dataclass(frozen=True)
class TurnMarkers:
    """How a turn opens (``open + role + close``) and ends (``end + sep``) in ``generic_tools``."""

    family: str
    open: str
    close: str
    end: str
    sep: str
    assistant: str = "assistant"
    bos: str = ""

    def as_jinja_dict(self) -> str:
        """The markers as a JSON object literal, for the ``tracetune_markers`` variable set atop ``generic_tools``."""
        keys = ("open", "close", "end", "sep", "assistant", "bos")
        return json.dumps({k: getattr(self, k) for k in keys})


@dataclass(frozen=True)
class TemplateChoice:
    """The template applied to the student's tokenizer, and where it came from."""

    source: Literal["student", "shipped", "file"]
    name: str  # "student", a shipped template's name, or the file's path
    text: str
    requested: str | None = None  # what the user asked for (None: the student's own)
    family: str | None = None  # shipped variants: "chatml", or the generic markers' family
    response_template: dict[str, Any] | None = None  # set on the tokenizer when not None

    @property
    def sha256(self) -> str:
        """The sha256 hex digest of the template text."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        """How reports name it: ``tool-aware -> chatml_tools``, ``student``, a path."""
        if self.requested and self.requested != self.name:
            return f"{self.requested} -> {self.name}"
        return self.name


def shipped_text(name: str) -> str:
    """The text of the template ``name`` shipped in ``prepare/chat_templates`` (``NAME.jinja``)."""
    return resources.files("tracetune.prepare").joinpath("chat_templates", f"{name}.jinja").read_text("utf-8")


def is_chatml(tokenizer) -> bool:
    """Whether the tokenizer's vocabulary holds every ChatML special token."""
    vocab = tokenizer.get_vocab()
    return all(t in vocab for t in CHATML_TOKENS)


def turn_markers(tokenizer) -> TurnMarkers:
    """The generic template's markers for this tokenizer (its role tokens if it has a known set)."""
    vocab = tokenizer.get_vocab()
    eos = tokenizer.eos_token
    bos = tokenizer.bos_token if tokenizer.bos_token and tokenizer.bos_token != eos else ""
    if all(t in vocab for t in ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")):
        bos = "<|begin_of_text|>" if "<|begin_of_text|>" in vocab else bos
        return TurnMarkers("llama3", "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", "", bos=bos)
    if all(t in vocab for t in ("<start_of_turn>", "<end_of_turn>")):
        return TurnMarkers("gemma", "<start_of_turn>", "\n", "<end_of_turn>", "\n", assistant="model", bos=bos)
    if not eos:
        raise TracetuneError(
            "the generic tool-aware template needs an end-of-turn token, and this tokenizer has no eos_token",
            hint="set an eos token on the student's tokenizer, or pass a .jinja file with --chat-template",
        )
    return TurnMarkers("plain", "<|", "|>\n", eos, "\n", bos=bos)


def response_template(start: str, ends: tuple[str, ...]) -> dict[str, Any]:
    """A ``parse_response`` schema: reasoning in ``<think>``, calls as ``<tool_call>`` JSON, text up to an end token."""
    unique = tuple(dict.fromkeys(e for e in ends if e))
    return {
        "defaults": {"role": "assistant"},
        "start_anchor": start,
        "fields": {
            "reasoning_content": {"open": "<think>", "close": "</think>", "content": "text"},
            "tool_calls": {
                "open_pattern": r"\s*<tool_call>",
                "close": "</tool_call>",
                "repeats": True,
                "content": "json",
                "transform": {"type": "function", "function": "{content}"},
            },
            "content": {"close_pattern": r"\s*(?:" + "|".join(re.escape(e) for e in unique) + ")", "content": "text"},
        },
    }


def chatml_choice(tokenizer, requested: str | None) -> TemplateChoice:
    """The shipped ``chatml_tools`` template, with a response schema ending at ChatML's end tokens or eos."""
    ends = CHATML_ENDS + ((tokenizer.eos_token,) if tokenizer.eos_token else ())
    rt = response_template("<|im_start|>assistant\n", ends)
    return TemplateChoice("shipped", "chatml_tools", shipped_text("chatml_tools"), requested, "chatml", rt)


def generic_choice(tokenizer, requested: str | None) -> TemplateChoice:
    """The shipped ``generic_tools`` template set up with this tokenizer's turn markers, and its response schema."""
    markers = turn_markers(tokenizer)
    text = shipped_text("generic_tools")
    if markers.family != "plain":
        text = "{%- set tracetune_markers = " + markers.as_jinja_dict() + " -%}\n" + text
    ends = (markers.end, tokenizer.eos_token or "")
    rt = response_template(markers.open + markers.assistant + markers.close, ends)
    return TemplateChoice("shipped", "generic_tools", text, requested, markers.family, rt)


def resolve_template(spec: str | None, tokenizer) -> TemplateChoice:
    """The template named by ``spec`` (None or 'student': the tokenizer's own) for this tokenizer."""
    if not spec or spec == "student":
        return TemplateChoice("student", "student", tokenizer.chat_template or "")
    if spec == TOOL_AWARE:
        return chatml_choice(tokenizer, spec) if is_chatml(tokenizer) else generic_choice(tokenizer, spec)
    if spec == "chatml_tools":
        return chatml_choice(tokenizer, spec)
    if spec == "generic_tools":
        return generic_choice(tokenizer, spec)
    path = Path(spec).expanduser()
    if path.is_file():
        return TemplateChoice("file", str(path), path.read_text(encoding="utf-8"), spec)
    raise TracetuneError(f"chat template {spec!r} is neither a file nor a template shipped with tracetune", hint=HINT)


def apply_choice(tokenizer, choice: TemplateChoice) -> None:
    """Set the chosen template (and its response template, if any) on the tokenizer."""
    if choice.source != "student":
        tokenizer.chat_template = choice.text
    if choice.response_template is not None:
        tokenizer.response_template = choice.response_template
