"""``prepare``: traces in, the prepared dataset folder out.

Order matters for privacy: sessions are redacted right after reading, before
anything is rendered, counted by tool, split or written. The chat template is
audited when the student loads and judged once the data is read (losing tool
calls is refused only when the data has some). Then tool schemas,
the family split, conversion (filters, clipping), rendering with the
student's template, and the atomic write of the dataset contract.

The traces are streamed in three passes (``stream``: learn secrets, redact and
survey, render), one file in memory at a time, with ``workers`` processes; the
output does not depend on their number.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from tracetune.conversation.types import Session
from tracetune.errors import TracetuneError
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.conversations import ConversationCounts
from tracetune.prepare.dataset import Rows, commit_dir, import_datasets_in_background, save_dataset, staging_dir, write_json
from tracetune.prepare.template_audit import TemplateAudit, audit_template, enforce
from tracetune.prepare.stats import PrepareStats
from tracetune.prepare.summary import PrepareSummary
from tracetune.prepare.windows import examples_for  # noqa: F401  (imported from here by callers and tests)

Progress = Callable[[str, int, int], None]  # step, done, total


@dataclass
class PrepareResult:
    out_dir: Path
    stats: PrepareSummary
    template_audit: TemplateAudit | None = None

    @property
    def dataset_dir(self) -> Path:
        """The folder holding the saved dataset (``out_dir/dataset``)."""
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
    """Whether any assistant message of ``sessions`` calls a tool."""
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
    workers: int = 1,
) -> PrepareResult:
    """Read, redact, split, render and write; returns the output folder and the stats.

    ``all_eval`` puts every session in the eval split (new sessions for a trained run's eval);
    ``read_options`` (``readers.registry.ReadOptions``) are the readers' settings, e.g. sidechains;
    ``workers`` processes scan and render (1: this process; also when the traces are under
    ``workers.MIN_PARALLEL_BYTES``); the output is the same for any number.
    Streams the traces in three passes (``stream``): memory does not grow with the corpus.
    """
    from tracetune.prepare.redact_stream import StreamRedactor
    from tracetune.prepare.split import split_sessions
    from tracetune.prepare.stream import Files, Sink, learn_pass, render_pass, survey_pass
    from tracetune.prepare.workers import Workers, worth_starting

    stats = PrepareStats()
    clock = _Clock(stats)
    tokenizer = tokenizer or load_student_tokenizer(config)
    audit = audit_student(config, tokenizer)
    clock.lap("load_student")
    files = Files.find(sources)
    out = Path(out_dir)
    tmp = staging_dir(out)
    try:
        redactor = StreamRedactor(config.redaction)
        spill = tmp / ".spill"
        spill.mkdir()
        with Workers(worth_starting(workers, files.paths), tokenizer, config) as pool:
            if pool.count > 1:
                import_datasets_in_background()
            learn_pass(files, fmt, read_options, redactor, pool, spill, progress)
            if not files.sessions:
                raise TracetuneError("no sessions found in the given traces", hint="pass session files or folders holding *.jsonl")
            clock.lap("read")
            survey = survey_pass(files, redactor, pool, spill, progress)
            stats.files = files.count
            stats.read_warnings.update(survey.warnings)
            redaction = redactor.finish(len(survey.sessions))
            stats.file_errors = [{"path": redaction.scrub(e.path), "error": redaction.scrub(e.message)}
                                 for e in files.errors]
            clock.lap("redact")
            if not survey.sessions:
                raise TracetuneError("no sessions left to prepare: every file changed while it was read",
                                     hint="prepare a copy of the sessions, or rerun when no agent is writing them")
            audit = enforce(audit, has_tool_calls=survey.has_tool_calls, student=config.student or "the student")
            catalog = survey.catalog.build(config.tools_file)
            split = split_sessions(survey.stubs, config.eval_fraction, config.seed, all_eval=all_eval)
            survey.stubs = []
            stats.sessions = len(survey.sessions)
            counts = ConversationCounts()
            sink = Sink({name: Rows(spill / f"{name}.rows") for name in ("train", "eval")},
                        {name: (tmp / f"{name}_episodes.jsonl").open("w", encoding="utf-8") for name in ("train", "eval")})
            try:
                render_pass(survey, catalog, split, config.resolved_system_prompt(), pool, sink, stats, counts, progress)
            finally:
                for handle in sink.episodes.values():
                    handle.close()
        clock.lap("render")
        rows = sink.rows
        extra = {
            "strategy": config.strategy,
            "max_length": config.max_length,
            "student": config.student,
            "conversion": counts.to_dict(),
            "split": {"train_sessions": len(split.train_ids), "eval_sessions": len(split.eval_ids), "warning": split.warning},
        }
        save_dataset(tmp / "dataset", rows)
        write_json(tmp / "redaction_report.json", redaction.to_dict())
        write_json(tmp / "tools.json", catalog.to_dict())
        write_json(tmp / "split.json", split.to_dict())
        write_json(tmp / "student.json", student_info(config, tokenizer, audit))
        clock.lap("write")
        summary = PrepareSummary.model_validate(stats.to_dict(extra))
        summary = summary.model_copy(update={"warnings": prefix_warnings(summary, config.max_length)})
        write_json(tmp / "prepare_stats.json", summary.model_dump(mode="json"))
        from tracetune.prepare.report import write_report

        write_report(tmp / "report.html", summary, rows, tokenizer, config.report_examples, audit.to_dict())
        for part in rows.values():
            part.close()
        shutil.rmtree(spill)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_dir(tmp, out)
    return PrepareResult(out, summary, audit)


def prefix_warnings(summary: PrepareSummary, max_length: int) -> list[str]:
    """A warning for each agent whose fixed prefix (system prompt + tools) takes over a quarter of max_length."""
    warnings = []
    for agent, prefix in summary.prefix_tokens_by_agent.items():
        if prefix.max * 4 > max_length:
            warnings.append(
                f"{agent}: the system prompt and tool definitions take up to {prefix.max:,} tokens of every "
                f"window ({100 * prefix.max / max_length:.0f}% of max_length {max_length:,}), so each window "
                f"repeats them before its turns; raise max_length, shorten the system prompt "
                f"(system_prompt), or give shorter tool definitions (tools_file)"
            )
    return warnings


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
        "head_user_chars": config.head_user_chars,
        "window_marker": config.window_marker,
    }


class _Clock:
    def __init__(self, stats: PrepareStats):
        self.stats = stats
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stats.seconds[name] = now - self.last
        self.last = now
