"""``results.json`` (every metric, every sample, the exact settings) and the HTML report.

``results.json`` layout (version 1):

- ``settings``: the eval config, inputs (prepared dir, base model, adapter),
  library versions, start time.
- ``models``: headline scalars per role, flat (``fidelity.parse_rate``,
  ``live.success_rate``, ``inspect.humaneval.accuracy``), for model cards.
- ``fidelity``: sampling counts, sample ids, per-model estimates with 95%
  intervals (overall and per teacher tool), tuned minus base, and every sample
  with the teacher's message and each model's raw output, parse and scores.
- ``inspect``: one entry per benchmark and model (``ok`` / ``skipped`` / ``error``).
- ``live``: per role, the live loop's ``LiveResult.to_dict()``, whose
  ``sandbox`` says how the model's commands were confined (mode, summary).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracetune.conversation.types import Message
from tracetune.conversation.wire import message_to_wire
from tracetune.eval.aggregate import METRICS, summarise
from tracetune.eval.fidelity import FidelityRun, ModelAnswer, Sample
from tracetune.util.files import atomic_write_json

RESULTS_VERSION = 1
LIVE_HEADLINES = ("success_rate", "self_ended_rate", "valid_call_rate", "mean_turns", "mean_tokens")


def describe_action(message: Message | None, parse_error: str | None = None, limit: int = 160) -> str:
    """A one-line human reading of an assistant message."""
    if message is None:
        return f"unparsed ({parse_error or 'error'})"
    if message.tool_calls:
        parts = []
        for call in message.tool_calls:
            args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in call.arguments.items())
            parts.append(f"{call.name}({args})")
        text = "; ".join(parts)
    elif message.content.strip():
        text = "reply: " + " ".join(message.content.split())
    else:
        text = "stop (empty message)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sample_record(sample: Sample, answers: dict[str, ModelAnswer]) -> dict[str, Any]:
    """One sample for ``results.json``: its context size, the teacher's message, each model's output and score."""
    return {
        "id": sample.id,
        "episode_id": sample.episode_id,
        "index": sample.index,
        "context_messages": len(sample.messages),
        "omitted_messages": sample.omitted,
        "squeezed_to_chars": sample.squeezed,
        "teacher": message_to_wire(sample.teacher, include_meta=False),
        "teacher_action": describe_action(sample.teacher),
        "outputs": {
            role: {
                "raw": a.generation.raw,
                "action": describe_action(a.generation.message, a.generation.parse_error),
                "message": message_to_wire(a.generation.message, include_meta=False) if a.generation.message else None,
                "parse_error": a.generation.parse_error,
                "finished": a.generation.finished,
                "looping": a.generation.looping,
                "prompt_tokens": a.generation.prompt_tokens,
                "completion_tokens": a.generation.completion_tokens,
                "score": a.score.to_dict(),
            }
            for role, a in answers.items()
        },
    }


def fidelity_section(run: FidelityRun, seed: int) -> dict[str, Any]:
    """The ``fidelity`` part of ``results.json``: sampling counts, estimates and every sample."""
    stats = run.stats
    records = [sample_record(s, {r: run.answers[r][i] for r in run.answers}) for i, s in enumerate(run.samples)]
    return {
        "sampling": {
            "episodes": stats.episodes, "bad_lines": stats.bad_lines, "bad_line_reasons": stats.bad_line_reasons[:20],
            "candidates": stats.candidates, "examined": stats.examined, "skipped_too_long": stats.skipped_too_long,
            "windowed": stats.windowed, "squeezed": stats.squeezed, "kept": stats.kept,
        },
        "sample_ids": [s.id for s in run.samples],
        **summarise(run, seed),
        "samples": records,
    }


def headline(fidelity: dict[str, Any] | None, live: dict[str, Any], inspect: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Flat ``{role: {name: value}}`` of the figures a model card or a table shows first."""
    out: dict[str, dict[str, Any]] = {}
    for role, model in ((fidelity or {}).get("models") or {}).items():
        row = out.setdefault(role, {})
        for m in METRICS:
            row[f"fidelity.{m.key}"] = model["metrics"][m.key]["mean"]
        row["fidelity.samples"] = len((fidelity or {}).get("sample_ids", []))
    for role, result in live.items():
        summary = result.get("summary", {})
        row = out.setdefault(role, {})
        for key in LIVE_HEADLINES:
            if key in summary:
                row[f"live.{key}"] = summary[key]
    for bench in inspect:
        if bench.get("status") == "ok":
            row = out.setdefault(bench["role"], {})
            for key, value in bench.get("metrics", {}).items():
                row[f"inspect.{bench['benchmark']}.{key}"] = value
    return out


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` as JSON to ``path``, atomically."""
    atomic_write_json(path, results, ensure_ascii=False, default=str, end="")


def pick_examples(fidelity: dict[str, Any] | None, count: int) -> list[dict[str, Any]]:
    """Samples where the models disagree first (most telling), then the rest, in file order."""
    if not fidelity or count == 0:
        return []
    samples = fidelity.get("samples", [])

    def differs(rec: dict[str, Any]) -> bool:
        actions = {o["action"] for o in rec["outputs"].values()}
        return len(actions) > 1

    chosen = [r for r in samples if differs(r)][:count]
    chosen += [r for r in samples if r not in chosen][: count - len(chosen)]
    return chosen


def render_html(results: dict[str, Any], examples: int = 6) -> str:
    """The HTML report of ``results``, with up to ``examples`` example samples."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("tracetune.eval", "templates"), autoescape=select_autoescape(["html", "jinja"]))
    env.filters["num"] = _num
    template = env.get_template("report.html.jinja")
    fidelity = results.get("fidelity")
    return template.render(
        results=results,
        fidelity=fidelity,
        metrics=METRICS,
        roles=list((fidelity or {}).get("models", {}).keys()),
        examples=pick_examples(fidelity, examples),
        live=results.get("live") or {},
        live_sandbox=live_sandbox(results.get("live") or {}),
        inspect=results.get("inspect") or [],
        settings_json=json.dumps(results.get("settings", {}), indent=2, default=str),
    )


def live_sandbox(live: dict[str, Any]) -> dict[str, str]:
    """{mode: what runs where} of the live runs (one entry when every role ran the same way)."""
    out: dict[str, str] = {}
    for result in live.values():
        sandbox = result.get("sandbox") or {}
        if sandbox.get("mode"):
            out.setdefault(sandbox["mode"], sandbox.get("summary", ""))
    return out


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
