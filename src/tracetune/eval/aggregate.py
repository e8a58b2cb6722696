"""From per-sample scores to the figures a report shows: overall, per tool, tuned minus base."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from tracetune.eval.fidelity import FidelityRun, ModelAnswer
from tracetune.eval.scorers import action_type
from tracetune.eval.stats import Estimate, estimate, paired_difference


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    value: Callable[[ModelAnswer], bool | float | None]
    applies: str  # which samples count, in words


METRICS: tuple[Metric, ...] = (
    Metric("parse_rate", "a complete message that parses", lambda a: a.score.parsed, "all samples"),
    Metric("action_match", "same action type", lambda a: a.score.action_match, "all samples"),
    Metric("continue_match", "same continue/hand-back decision", lambda a: a.score.continue_match, "all samples"),
    Metric("valid_call", "valid tool calls", lambda a: a.score.valid_call, "student called a tool"),
    Metric("known_tool", "calls name a known tool", lambda a: a.score.known_tool, "student called a tool"),
    Metric("schema_valid", "arguments fit the schema", lambda a: a.score.schema_valid, "student called a known tool"),
    Metric("tool_match", "same tool", lambda a: a.score.tool_match, "teacher called a tool"),
    Metric("args_similarity", "argument agreement", lambda a: a.score.args_similarity, "same tool as the teacher"),
    Metric("path_match", "exact path", lambda a: a.score.path_match, "same tool, with a path argument"),
    Metric("reply_similarity", "reply similarity", lambda a: a.score.reply_similarity, "teacher replied in text"),
    Metric("finished", "ended before the token cap", lambda a: a.generation.finished, "all samples"),
)
PER_TOOL_METRICS = ("parse_rate", "action_match", "tool_match", "valid_call", "args_similarity", "path_match")
_BY_KEY = {m.key: m for m in METRICS}


def overall(answers: list[ModelAnswer], seed: int) -> dict[str, Estimate]:
    """Every metric in ``METRICS`` estimated over all ``answers``."""
    return {m.key: estimate([m.value(a) for a in answers], seed=seed) for m in METRICS}


def teacher_group(answer: ModelAnswer) -> str:
    """The teacher's tool for a tool call, else ``(reply)`` / ``(stop)``."""
    return answer.score.teacher_tool or f"({answer.score.teacher_action})"


def per_tool(answers: list[ModelAnswer], seed: int) -> dict[str, dict[str, Estimate]]:
    """The per-tool metrics for each teacher group (tool name, ``(reply)``, ``(stop)``), largest group first."""
    groups: dict[str, list[ModelAnswer]] = {}
    for a in answers:
        groups.setdefault(teacher_group(a), []).append(a)
    return {
        name: {key: estimate([_BY_KEY[key].value(a) for a in members], seed=seed) for key in PER_TOOL_METRICS}
        for name, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    }


def comparison(base: list[ModelAnswer], tuned: list[ModelAnswer], seed: int) -> dict[str, Estimate]:
    """Tuned minus base on the same samples, paired."""
    return {m.key: paired_difference([m.value(a) for a in base], [m.value(a) for a in tuned], seed=seed) for m in METRICS}


def parse_errors(answers: list[ModelAnswer]) -> dict[str, int]:
    """How often each parse error kind occurs in ``answers``, most common first."""
    return dict(Counter(a.score.parse_error for a in answers if a.score.parse_error).most_common())


def token_counts(answers: list[ModelAnswer]) -> dict[str, float]:
    """Mean prompt and completion tokens per answer."""
    n = max(1, len(answers))
    return {
        "mean_prompt_tokens": sum(a.generation.prompt_tokens for a in answers) / n,
        "mean_completion_tokens": sum(a.generation.completion_tokens for a in answers) / n,
    }


def majority_floor(run: FidelityRun, seed: int) -> dict[str, Any]:
    """What always giving the teacher's most common answer scores on these samples.

    ``tool_match``: always calling the most frequent teacher tool (on real pi sessions, ``bash``:
    about 45% of calls), the floor a student's "same tool" must beat to show it learned more than
    the tool mix. ``action_match``: always taking the most frequent action type.
    """
    tools = [s.teacher.tool_calls[0].name for s in run.samples if s.teacher.tool_calls]
    actions = [action_type(s.teacher) for s in run.samples]
    out: dict[str, Any] = {}
    if tools:
        top, _ = Counter(tools).most_common(1)[0]
        out["tool"] = top
        out["tool_match"] = estimate([t == top for t in tools], seed=seed).to_dict()
    if actions:
        top_action, _ = Counter(actions).most_common(1)[0]
        out["action"] = top_action
        out["action_match"] = estimate([a == top_action for a in actions], seed=seed).to_dict()
    return out


def summarise(run: FidelityRun, seed: int) -> dict[str, Any]:
    """Every aggregate figure of a fidelity run, JSON-ready."""
    models = {}
    for role, answers in run.answers.items():
        models[role] = {
            "model": run.model_ids.get(role, role),
            "seconds": round(run.seconds.get(role, 0.0), 3),
            "metrics": {k: e.to_dict() for k, e in overall(answers, seed).items()},
            "per_tool": {t: {k: e.to_dict() for k, e in ms.items()} for t, ms in per_tool(answers, seed).items()},
            "parse_errors": parse_errors(answers),
            **token_counts(answers),
        }
    out: dict[str, Any] = {
        "metric_definitions": {m.key: {"label": m.label, "over": m.applies} for m in METRICS},
        "models": models,
    }
    out["floor"] = majority_floor(run, seed)
    if "base" in run.answers and "tuned" in run.answers:
        out["tuned_minus_base"] = {k: e.to_dict() for k, e in comparison(run.answers["base"], run.answers["tuned"], seed).items()}
    return out
