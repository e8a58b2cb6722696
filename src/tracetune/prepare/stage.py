"""``prepare``: traces in, the prepared dataset folder out.

Order matters for privacy: sessions are redacted right after reading, before
anything is rendered, counted by tool, split or written. The chat template is
audited when the student loads and judged once the data is read (losing tool
calls is refused only when the data has some). Then tool schemas,
the family split, conversion (filters, clipping), rendering with the
student's template, and the atomic write of the dataset contract.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tracetune.conversation.types import Session
from tracetune.conversation.wire import episode_to_wire
from tracetune.errors import TracetuneError
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.conversations import ConversationCounts, convert_episode, to_conversation
from tracetune.prepare.dataset import Rows, commit_dir, save_dataset, staging_dir, write_json, write_jsonl
from tracetune.prepare.template_audit import TemplateAudit, audit_template, enforce
from tracetune.prepare.stats import PrepareStats
from tracetune.prepare.windows import Planner, per_turn, trajectory

Progress = Callable[[str, int, int], None]  # step, done, total


@dataclass
class PrepareResult:
    out_dir: Path
    stats: dict[str, Any]
    template_audit: TemplateAudit | None = None

    @property
    def dataset_dir(self) -> Path:
        return self.out_dir / "dataset"


def load_student_tokenizer(config: PrepareConfig):
    """The student's tokenizer with the configured template (and its response template) applied."""
    from tracetune.prepare.chat_template import apply_choice
    from tracetune.engines.tokenizer import load_tokenizer

    if not config.student:
        raise TracetuneError("no student given", hint="pass --student MODEL_ID_OR_FOLDER (or build one: tracetune student tiny)")
    tokenizer = load_tokenizer(config.student, require_template=not config.chat_template)
    apply_choice(tokenizer, config.template_choice(tokenizer))
    if not tokenizer.chat_template:
        raise TracetuneError(f"the tokenizer of {config.student} has no chat template", hint="pass --template tool-aware")
    return tokenizer


def audit_student(config: PrepareConfig, tokenizer) -> TemplateAudit:
    """The probe's verdict on the template ``tokenizer`` carries (as ``config.chat_template`` chose it)."""
    from tracetune.prepare.chat_template import TemplateChoice, resolve_template

    choice = resolve_template(config.chat_template, tokenizer)
    if choice.text != (tokenizer.chat_template or ""):  # a tokenizer handed in with its own template
        choice = TemplateChoice("student", "student", tokenizer.chat_template or "")
    return audit_template(tokenizer, choice)


def has_tool_calls(sessions: list[Session]) -> bool:
    return any(m.tool_calls for s in sessions for e in s.episodes for m in e.messages)


def prepare(
    config: PrepareConfig,
    sources: Iterable[str | Path],
    out_dir: str | Path,
    *,
    fmt: str | None = None,
    tokenizer=None,
    progress: Progress | None = None,
    all_eval: bool = False,
    read_options=None,
) -> PrepareResult:
    """Read, redact, split, render and write; returns the output folder and the stats.

    ``all_eval`` puts every session in the eval split (new sessions for a trained run's eval);
    ``read_options`` (``readers.registry.ReadOptions``) are the readers' settings, e.g. sidechains.
    """
    from tracetune.prepare.redact import redact_sessions
    from tracetune.prepare.split import split_sessions
    from tracetune.prepare.tools import ToolCatalog
    from tracetune.readers import read_paths

    stats = PrepareStats()
    clock = _Clock(stats)
    tokenizer = tokenizer or load_student_tokenizer(config)
    audit = audit_student(config, tokenizer)
    clock.lap("load_student")
    read = read_paths(list(sources), fmt, options=read_options)
    stats.files = len(read.formats) + len(read.errors)
    stats.read_warnings.update(w.kind for w in read.warnings)
    if not read.sessions:
        raise TracetuneError("no sessions found in the given traces", hint="pass session files or folders holding *.jsonl")
    clock.lap("read")
    sessions, redaction = redact_sessions(read.sessions, config.redaction)
    stats.file_errors = [{"path": redaction.scrub(e.path), "error": redaction.scrub(e.message)} for e in read.errors]
    clock.lap("redact")
    audit = enforce(audit, has_tool_calls=has_tool_calls(sessions), student=config.student or "the student")
    catalog = ToolCatalog.from_sessions(sessions, config.tools_file)
    split = split_sessions(sessions, config.eval_fraction, config.seed, all_eval=all_eval)
    stats.sessions = len(sessions)
    acc = _Collected(stats)
    system = config.resolved_system_prompt()
    eval_ids = set(split.eval_ids)
    for n, session in enumerate(sessions):
        which = "eval" if session.id in eval_ids else "train"
        family = split.families.get(session.id, session.id)
        _prepare_session(tokenizer, config, session, catalog.for_session(session), system, family, which, acc)
        if progress:
            progress("render", n + 1, len(sessions))
    clock.lap("render")
    rows, episodes = acc.rows, acc.episodes
    extra = {
        "strategy": config.strategy,
        "max_length": config.max_length,
        "student": config.student,
        "conversion": acc.counts.to_dict(),
        "split": {"train_sessions": len(split.train_ids), "eval_sessions": len(split.eval_ids), "warning": split.warning},
    }
    out = Path(out_dir)
    tmp = staging_dir(out)
    save_dataset(tmp / "dataset", rows)
    for name, records in episodes.items():
        write_jsonl(tmp / f"{name}_episodes.jsonl", iter(records))
    write_json(tmp / "redaction_report.json", redaction.to_dict())
    write_json(tmp / "tools.json", catalog.to_dict())
    write_json(tmp / "split.json", split.to_dict())
    write_json(tmp / "student.json", student_info(config, tokenizer, audit))
    clock.lap("write")
    summary = stats.to_dict(extra)
    summary["warnings"] = prefix_warnings(summary, config.max_length)
    write_json(tmp / "prepare_stats.json", summary)
    from tracetune.prepare.report import write_report

    write_report(tmp / "report.html", summary, rows, tokenizer, config.report_examples, audit.to_dict())
    commit_dir(tmp, out)
    return PrepareResult(out, summary, audit)


@dataclass
class _Collected:
    """What the render loop accumulates, per split."""

    stats: PrepareStats
    counts: ConversationCounts = field(default_factory=ConversationCounts)
    rows: dict[str, Rows] = field(default_factory=lambda: {"train": Rows(), "eval": Rows()})
    episodes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"train": [], "eval": []})


def _prepare_session(tokenizer, config: PrepareConfig, session: Session, tools, system, family: str, which: str, acc: _Collected) -> None:
    for episode in session.episodes:
        acc.stats.episodes += 1
        converted = convert_episode(episode, config, acc.counts)
        if not converted.target_indices:
            acc.stats.episodes_without_targets += 1
            continue
        acc.stats.targets_after_filters += len(converted.target_indices)
        conv = to_conversation(session, converted, tools, system or session.system_prompt)
        result = examples_for(tokenizer, conv, config)
        names = [c["function"]["name"] for ex in result.examples for t in ex.targets for c in conv.messages[t].get("tool_calls") or []]
        acc.stats.add_episode(which, result, names)
        acc.stats.add_session_episode(session, which, len(converted.target_indices), result)
        for ex in result.examples:
            acc.rows[which].add(ex, episode.id, session.id, family, conv.tools)
        record = episode_to_wire(converted, tools, system_prompt=conv.system, include_reasoning=config.include_reasoning)
        record["tracetune"].update({"session_id": session.id, "family_id": family, "agent": session.agent})
        acc.episodes[which].append(record)


def prefix_warnings(summary: dict[str, Any], max_length: int) -> list[str]:
    """A warning for each agent whose fixed prefix (system prompt + tools) takes over a quarter of max_length."""
    warnings = []
    for agent, prefix in summary.get("prefix_tokens_by_agent", {}).items():
        if prefix["max"] * 4 > max_length:
            warnings.append(
                f"{agent}: the system prompt and tool definitions take up to {prefix['max']:,} tokens of every "
                f"window ({100 * prefix['max'] / max_length:.0f}% of max_length {max_length:,}), so each window "
                f"repeats them before its turns; raise max_length, shorten the system prompt "
                f"(system_prompt), or give shorter tool definitions (tools_file)"
            )
    return warnings


def examples_for(tokenizer, conv, config: PrepareConfig):
    """The examples of one Conversation under the configured strategy."""
    planner = Planner(tokenizer, conv, config.head_user_chars, config.window_marker)
    if config.strategy == "per-turn":
        result = per_turn(tokenizer, conv, config.max_length, config.per_turn_history, planner, config.per_turn_fit)
    else:
        result = trajectory(tokenizer, conv, config.max_length, config.window_context, planner)
    result.prefix_tokens = planner.base
    return result


def student_info(config: PrepareConfig, tokenizer, audit: TemplateAudit | None = None) -> dict[str, Any]:
    """``student.json``: which tokenizer and template rendered the ids.

    ``chat_template`` stays what was asked for ('student', a shipped name, a file)
    except for 'tool-aware', which records the template text itself (it depends on
    the tokenizer); ``chat_template_text`` and ``response_template`` are what was
    applied, so train and eval reproduce it exactly.
    """
    template = tokenizer.chat_template or ""
    asked = config.chat_template or "student"
    return {
        "student": config.student,
        "tokenizer_class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "eos_token": tokenizer.eos_token,
        "chat_template": template if asked == "tool-aware" else asked,
        "chat_template_text": template if asked != "student" else None,
        "response_template": getattr(tokenizer, "response_template", None),
        "template_audit": audit.to_dict() if audit else None,
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
        "include_reasoning": config.include_reasoning,
        "max_length": config.max_length,
        "strategy": config.strategy,
    }


class _Clock:
    def __init__(self, stats: PrepareStats):
        self.stats = stats
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stats.seconds[name] = now - self.last
        self.last = now
