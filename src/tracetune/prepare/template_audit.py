"""The chat template audit: does the student's template carry a tool-calling conversation intact?

Before prepare renders anything, a probe conversation (system, tools, user,
an assistant turn that is only a tool call, the tool result, an assistant
reply) is rendered with the template. The verdict says whether the tool
definitions, the call's name, the call's argument value and the result
survive; whether the template is prefix-stable (each assistant turn rendered
from its growing prefix sits at the same offset in the whole render, and
tokenizing the pieces gives the tokens of the whole); and, for information,
whether it has ``{% generation %}`` markers.

``enforce`` turns the verdict into a decision once the data is known: losing
tools is refused when the dataset has tool calls (a warning otherwise), and
prefix instability or a template that cannot render the probe is always
refused, since the assistant masks rest on it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tracetune.errors import TracetuneError
from tracetune.prepare.chat_template import TemplateChoice

TOOL_NAME = "tracetune_probe_tool"
ARG_VALUE = 7391
RESULT = "probe_result_42"
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "probe",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
    },
}
CALL = {"id": "probe_1", "type": "function", "function": {"name": TOOL_NAME, "arguments": {"x": ARG_VALUE}}}
PROBE = (
    {"role": "system", "content": "probe system"},
    {"role": "user", "content": "probe"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "probe_1", "name": TOOL_NAME, "content": RESULT},
    {"role": "assistant", "content": "probe done"},
)
PLAIN_PROBE = (
    {"role": "system", "content": "probe system"},
    {"role": "user", "content": "probe"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": "again"},
    {"role": "assistant", "content": "second answer"},
)
GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
LOSSES = {
    "tools_rendered": "tool definitions are not rendered",
    "call_name_survives": "a tool-call-only assistant turn renders empty (tool calls are dropped)",
    "call_arguments_survive": "tool call arguments are dropped",
    "tool_result_survives": "tool results are dropped",
}


@dataclass(frozen=True)
class TemplateAudit:
    """What the probe showed about one chat template (written to ``student.json``)."""

    template: str  # "student", "tool-aware -> chatml_tools", a file path
    source: str  # "student" | "shipped" | "file"
    sha256: str
    tools_rendered: bool = False
    call_name_survives: bool = False
    call_arguments_survive: bool = False
    tool_result_survives: bool = False
    prefix_stable: bool = False
    tokens_stable: bool = False
    generation_markers: bool = False
    render_error: str | None = None  # the tool probe could not be rendered
    unstable_reason: str | None = None
    has_tool_calls: bool | None = None  # filled by ``enforce`` once the data is read
    warnings: tuple[str, ...] = field(default=())

    @property
    def lost(self) -> list[str]:
        """What a tool-calling conversation loses under this template."""
        if self.render_error:
            return [f"a tool-calling conversation does not render ({self.render_error})"]
        return [msg for key, msg in LOSSES.items() if not getattr(self, key)]

    @property
    def tool_aware(self) -> bool:
        """Whether a tool-calling conversation renders with its tools, calls and results intact under this template."""
        return not self.lost

    @property
    def stable(self) -> bool:
        """Whether the rendering is prefix-stable and its pieces tokenize as the whole does."""
        return self.prefix_stable and self.tokens_stable

    @property
    def verdict(self) -> str:
        """``refused`` when unstable, or lossy on data with tool calls; ``passed with warnings`` when lossy;
        else ``passed``.
        """
        if not self.stable:
            return "refused"
        if self.lost:
            return "refused" if self.has_tool_calls else "passed with warnings"
        return "passed"

    def to_dict(self) -> dict[str, Any]:
        """The audit's fields with its losses and verdict, as written to ``student.json``."""
        return {**asdict(self), "warnings": list(self.warnings), "lost": self.lost, "verdict": self.verdict}


def audit_template(tokenizer, choice: TemplateChoice) -> TemplateAudit:
    """Render the probe with the tokenizer's current template; never raises."""
    text = tokenizer.chat_template or ""
    base = TemplateAudit(choice.label, choice.source, choice.sha256, generation_markers=bool(GENERATION.search(text)))
    try:
        spans, whole = _render(tokenizer, PROBE, [PROBE_TOOL])
    except _Unstable as exc:
        return replace(base, unstable_reason=str(exc), **_tool_checks(tokenizer, exc.spans, exc.whole))
    except Exception as exc:  # jinja errors, raise_exception in the template
        return replace(base, render_error=_short(exc), **_plain_stability(tokenizer))
    tokens_ok = _pieces_tokenize_alike(tokenizer, whole, spans)
    reason = None if tokens_ok else "tokenizing the rendered pieces one by one gives other tokens than the whole"
    return replace(base, prefix_stable=True, tokens_stable=tokens_ok, unstable_reason=reason, **_tool_checks(tokenizer, spans, whole))


def enforce(audit: TemplateAudit, *, has_tool_calls: bool, student: str = "the student") -> TemplateAudit:
    """The audit with the data's verdict; raises ``TracetuneError`` when the template is refused."""
    audit = replace(audit, has_tool_calls=has_tool_calls)
    name = f"the chat template of {student} ({audit.template})"
    if not audit.stable:
        raise TracetuneError(
            f"{name} is not prefix-stable: {audit.unstable_reason}; the assistant masks cannot be computed from it",
            hint="pass --template tool-aware (a prefix-stable template shipped with tracetune) or a fixed .jinja file",
        )
    if audit.lost and has_tool_calls:
        raise TracetuneError(
            f"{name} is not tool-aware: " + "; ".join(audit.lost) + ". Training on it would teach no tool calls",
            hint="pass --template tool-aware (tracetune picks chatml_tools or generic_tools for this tokenizer), "
            "--chat-template chatml_tools, or a .jinja file that renders tools, tool_calls and tool results",
        )
    if audit.lost:
        audit = replace(audit, warnings=(*audit.warnings, "the dataset has no tool calls; this template would lose "
                                        "them: " + "; ".join(audit.lost)))
    return audit


class _Unstable(ValueError):
    def __init__(self, reason: str, spans: list[tuple[int, int]], whole: str):
        super().__init__(reason)
        self.spans, self.whole = spans, whole


def _render(tokenizer, messages, tools) -> tuple[list[tuple[int, int]], str]:
    """The whole render and each assistant turn's span in it; raises ``_Unstable`` when a turn moves."""
    from tracetune.prepare.render import apply_template

    whole = apply_template(tokenizer, list(messages), tools)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = apply_template(tokenizer, list(messages[:i]), tools, generation=True)
        upto = apply_template(tokenizer, list(messages[: i + 1]), tools)
        if not upto.startswith(prompt):
            raise _Unstable(f"the generation prompt before message {i} is not a prefix of that turn's render", spans, whole)
        span = (len(prompt), max(len(prompt), len(upto.rstrip())))
        if not whole.startswith(upto):
            raise _Unstable(f"assistant message {i} renders differently once later messages follow", spans, whole)
        spans.append(span)
    return spans, whole


def _tool_checks(tokenizer, spans: list[tuple[int, int]], whole: str) -> dict[str, bool]:
    from tracetune.prepare.render import apply_template

    head = list(PROBE[:2])
    with_tools = apply_template(tokenizer, head, [PROBE_TOOL])
    call_span = whole[spans[0][0]:spans[0][1]] if spans else ""
    return {
        "tools_rendered": TOOL_NAME in with_tools and with_tools != apply_template(tokenizer, head, None),
        "call_name_survives": TOOL_NAME in call_span,
        "call_arguments_survive": str(ARG_VALUE) in call_span,
        "tool_result_survives": RESULT in whole,
    }


def _plain_stability(tokenizer) -> dict[str, Any]:
    """Prefix stability on a conversation without tools (when the tool probe does not render)."""
    try:
        spans, whole = _render(tokenizer, PLAIN_PROBE, None)
    except _Unstable as exc:
        return {"unstable_reason": str(exc)}
    except Exception as exc:
        return {"unstable_reason": f"a plain conversation does not render ({_short(exc)})"}
    ok = _pieces_tokenize_alike(tokenizer, whole, spans)
    return {"prefix_stable": True, "tokens_stable": ok,
            "unstable_reason": None if ok else "tokenizing the rendered pieces one by one gives other tokens than the whole"}


def _pieces_tokenize_alike(tokenizer, whole: str, spans: list[tuple[int, int]]) -> bool:
    cuts = sorted({0, len(whole), *(c for span in spans for c in span)})
    pieces = [whole[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
    ids: list[int] = []
    for piece in pieces:
        ids.extend(tokenizer(piece, add_special_tokens=False)["input_ids"])
    return ids == tokenizer(whole, add_special_tokens=False)["input_ids"]


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def check_template(tokenizer, name: str = "the student") -> None:
    """Raise a clear error when the tokenizer's chat template loses tools, tool calls or results, or is unstable.

    The strict form of the audit (``template_audit``), for callers that know the data has tool calls.
    """
    from tracetune.prepare.chat_template import TemplateChoice

    choice = TemplateChoice("student", "student", tokenizer.chat_template or "")
    enforce(audit_template(tokenizer, choice), has_tool_calls=True, student=name)
