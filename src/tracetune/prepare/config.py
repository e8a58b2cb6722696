"""``PrepareConfig``: every option of ``tracetune prepare``, documented in place."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracetune.errors import TracetuneError

from tracetune.prepare.redact import RedactOptions


Strategy = Literal["trajectory", "per-turn"]
LongTurns = Literal["drop", "truncate"]


class PrepareConfig(BaseModel):
    """How sessions become a training dataset."""

    model_config = ConfigDict(extra="forbid")

    student: str | None = Field(
        None,
        description="Model id or local folder whose tokenizer and chat template render the dataset "
        "(in a run config, the [student] section fills it).",
    )
    chat_template: str | None = Field(
        None,
        description="Override the student's chat template: 'tool-aware' (the shipped variant that fits the "
        "student: 'chatml_tools' for ChatML tokenizers, else 'generic_tools' on the model's own special tokens), "
        "a shipped name, or a .jinja file. Needed for students whose template drops tools (e.g. SmolLM2).",
    )
    system_prompt: str | None = Field(
        None,
        description="System prompt for every example: the text itself, or a path to a file holding it. "
        "Empty: the prompt recorded in the trace, if any.",
    )
    max_length: int = Field(4096, ge=64, description="Longest example in tokens; longer Episodes are windowed.")
    strategy: Strategy = Field(
        "trajectory",
        description="'trajectory': one example per Episode (windowed when too long), every target turn "
        "supervised in one pass. 'per-turn': one example per target turn with its history re-rendered "
        "(the reference recipe's way; for comparison).",
    )
    per_turn_history: int = Field(
        18, ge=0, description="per-turn only: keep at most this many history messages, as the reference recipe "
        "did (18); 0 keeps the whole history."
    )
    per_turn_fit: bool = Field(
        False,
        description="per-turn only: drop the oldest history messages until an example fits max_length, "
        "instead of dropping the turn.",
    )
    window_context: float = Field(
        0.1,
        ge=0.0,
        le=0.9,
        description="Share of max_length a window may spend on earlier turns repeated as context "
        "before its first new target turn.",
    )
    long_turns: LongTurns = Field(
        "drop",
        description="trajectory only: a target turn longer than a window is 'drop'ped (counted as too_long), or "
        "'truncate'd: supervised in its first part, the ids cut at max_length (at least an eighth of the window "
        "supervised, the turn's end never trained). docs/benchmarks.md ('Prepare at scale') has the measurement.",
    )
    window_marker: bool = Field(
        True, description="Tell the model when a window elides earlier turns ('[N earlier messages omitted]')."
    )
    head_user_chars: int = Field(
        4000, ge=0, description="A window repeats the task's first user message clipped to this many characters."
    )
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of sessions held out for eval, taken as whole session families (a family never straddles the split).")
    seed: int = Field(0, description="Seed for the train/eval split.")
    clip_tool_result_chars: int | None = Field(
        8000,
        ge=200,
        description="Clip tool results longer than this (head and tail kept, a visible marker in between). "
        "Empty: never clip.",
    )
    tools_file: str | None = Field(
        None, description="JSON file of tool definitions that replace or add to the built-in and inferred ones."
    )
    include_reasoning: bool = Field(False, description="Render (and supervise) the teacher's reasoning.")
    teacher_models: list[str] = Field(
        default_factory=list,
        description="Only supervise turns from these teacher models (exact ids or a trailing '*' prefix "
        "match, e.g. 'anthropic/*'); other turns stay as context. Empty: all.",
    )
    drop_failed_turns: bool = Field(
        True,
        description="Remove aborted, errored and empty assistant turns (and the results of their tool calls) "
        "from the context, as pi's provider layer does before calling the model.",
    )
    redaction: RedactOptions = Field(default_factory=RedactOptions, description="Secret and path redaction.")
    report_examples: int = Field(4, ge=0, description="Rendered examples shown in report.html.")

    @field_validator("teacher_models")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        return [v.strip() for v in value if v.strip()]

    def resolved_system_prompt(self) -> str | None:
        """The system prompt text (read from the file when ``system_prompt`` names one)."""
        if not self.system_prompt:
            return None
        if "\n" not in self.system_prompt and _is_file(self.system_prompt):
            return Path(self.system_prompt).expanduser().read_text(encoding="utf-8")
        return self.system_prompt

    def resolved_chat_template(self) -> str | None:
        """The override template's text, or None to keep the student's own.

        'tool-aware' depends on the tokenizer: use ``template_choice`` for it.
        """
        if not self.chat_template or self.chat_template == "student":
            return None
        if self.chat_template == "tool-aware":
            raise TracetuneError("'tool-aware' is resolved against the student's tokenizer", hint="call template_choice(tokenizer)")
        shipped = resources.files("tracetune.prepare").joinpath("chat_templates", f"{self.chat_template}.jinja")
        if shipped.is_file():
            return shipped.read_text(encoding="utf-8")
        path = Path(self.chat_template).expanduser()
        if path.is_file():
            return path.read_text(encoding="utf-8")
        raise TracetuneError(
            f"chat template {self.chat_template!r} is neither a file nor a template shipped with tracetune",
            hint="pass 'tool-aware', 'chatml_tools', 'generic_tools' or a .jinja file",
        )

    def template_choice(self, tokenizer):
        """The ``TemplateChoice`` this config asks for, for this tokenizer (see ``prepare.chat_template``)."""
        from tracetune.prepare.chat_template import resolve_template

        return resolve_template(self.chat_template, tokenizer)

    def teacher_allowed(self, model: str | None) -> bool:
        """Whether ``model``'s turns are supervised: yes when ``teacher_models`` is empty or one of them matches it."""
        if not self.teacher_models:
            return True
        if model is None:
            return False
        return any(model.startswith(p[:-1]) if p.endswith("*") else model == p for p in self.teacher_models)


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file (text too long to be a path is not one)."""
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):
        return False
