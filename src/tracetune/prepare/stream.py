"""``prepare``'s three passes over the traces, one file in memory at a time.

1. **learn** (``learn_pass``): read each file once, spill its sessions as read
   to a temporary file (pickle), scan its distinct texts for secrets (chunks
   spread over the workers), and teach ``StreamRedactor`` in corpus order.
   Nothing of the sessions is kept in memory but findings (see
   ``redact_stream``). A file whose size or modification time changed while it
   was read is skipped with an error.
2. **survey** (``survey_pass``): the learned ``StreamRedactor`` is pickled once
   for the workers; each loads a file's spilled sessions (never the trace file
   again: what is redacted is exactly what was learned), redacts them with what
   the whole corpus taught (``StreamRedactor.rewrite_file``), spills them
   redacted in place of the raw ones and sends back the small metadata the
   split and the tool catalog need (``corpus.SessionSummary``) with what the
   redaction report counts (``redact_stream.FileLog``), which this process
   counts in file order (``StreamRedactor.account``): the report is the one a
   single process gives.
3. **render** (``render_pass``): each Episode is converted, rendered and
   serialised by a worker (``tasks.render_episode``); the results come back in
   order and are appended to the rows (spilled to disk, ``dataset.Rows``), the
   episode JSONL files and the stats.

Memory therefore holds one file's sessions (per worker), the redactor's
findings, the per-session metadata and the small per-row columns: it does not
grow with the text of the corpus. The cost is a temporary folder beside the
output holding the corpus pickled (raw until the survey pass, then redacted).
Parsing a trace file costs about ten times pickling and loading its sessions,
which is why it is read once.
"""

from __future__ import annotations

import os
import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from tracetune.prepare.corpus import Survey, write_spill
from tracetune.prepare.dataset import Rows
from tracetune.prepare.redact_stream import StreamRedactor, distinct_texts, keyed_candidates
from tracetune.prepare.tasks import EpisodeTask, SurveyTask, chunks, detect, render_episode, survey_file
from tracetune.prepare.workers import Workers
from tracetune.readers.discover import FileError, discover_files, read_one, resolve_sources

Progress = Callable[[str, int, int], None]


@dataclass
class Files:
    """The trace files, as found once and read again by each pass."""

    paths: list[Path]
    errors: list[FileError] = field(default_factory=list)  # skipped unopened, unreadable, changed
    formats: dict[str, str] = field(default_factory=dict)  # source -> format
    raw: dict[Path, Path] = field(default_factory=dict)  # path -> its sessions as read, spilled by the learn pass
    sessions: int = 0  # read by the learn pass
    ids: Counter = field(default_factory=Counter)  # session id -> times read
    changed: set[Path] = field(default_factory=set)  # read, then changed: skipped

    @property
    def count(self) -> int:
        """Files read or refused, as ``read_paths`` counts them (formats and errors), each once."""
        return len(self.formats) + len(self.errors) - len(self.changed)

    @classmethod
    def find(cls, sources) -> "Files":
        """The session files under ``sources`` (``hf://`` ones downloaded first), those skipped unopened as errors."""
        local, _ = resolve_sources(list(sources))
        paths, skipped = discover_files(local)
        return cls(paths, list(skipped))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def learn_pass(files: Files, fmt, options, redactor: StreamRedactor, workers: Workers, spill_dir: Path,
               progress: Progress | None) -> None:
    """Pass 1: read every file, spill its sessions to ``spill_dir`` and teach ``redactor`` (see the module docstring)."""
    pending: dict[int, dict[str, Any]] = {}

    def tasks():
        for n, path in enumerate(files.paths):
            stamp = _stamp(path)
            read = read_one(path, fmt, options)
            files.errors.extend(read.errors)
            files.formats.update(read.formats)
            files.sessions += len(read.sessions)
            files.ids.update(s.id for s in read.sessions)
            if read.sessions and (stamp is None or stamp != _stamp(path)):
                files.errors.append(_changed(files, path))
            elif read.sessions:
                files.raw[path] = write_spill(spill_dir / f"raw-{n:06d}.pkl", read.sessions)
            texts = distinct_texts(read.sessions) if redactor.active else []
            parts = chunks(texts)
            pending[n] = {"texts": texts, "keyed": keyed_candidates(read.sessions) if redactor.active else [],
                          "spans": [], "left": len(parts)}
            del read
            for part in parts:
                yield n, part

    for n, spans in workers.run(detect, tasks()):
        entry = pending[n]
        entry["spans"].extend(spans)
        entry["left"] -= 1
        if not entry["left"]:
            redactor.learn_found(entry["texts"], entry["spans"], entry["keyed"])
            del pending[n]
            if progress:
                progress("scan", n + 1, len(files.paths))
    redactor.finish_learning()


def survey_pass(files: Files, redactor: StreamRedactor, workers: Workers, spill_dir: Path,
                progress: Progress | None) -> Survey:
    """Pass 2: each file's spilled sessions redacted and spilled again by the workers, their metadata kept and the
    redaction counted here in file order."""
    survey = Survey()
    survey.catalog.repeated_ids = frozenset(i for i, n in files.ids.items() if n > 1)
    learned = spill_dir / "learned.pkl"
    if workers.count > 1:
        with learned.open("wb") as fh:
            pickle.dump(redactor, fh, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        workers.state.learned = {learned: redactor}

    def tasks():
        for n, path in enumerate(files.paths):
            raw = files.raw.pop(path, None)
            if raw is not None:  # else unreadable, changed while read, or empty: its error (if any) is recorded
                yield n, SurveyTask(raw, spill_dir / f"{n:06d}.pkl", learned)

    for n, out in workers.run(survey_file, tasks()):
        redactor.account(out.log)
        for summary in out.summaries:
            survey.add_summary(summary)
        if progress:
            progress("redact", n + 1, len(files.paths))
    learned.unlink(missing_ok=True)
    workers.state.learned = {}
    return survey


def _changed(files: Files, path: Path) -> FileError:
    files.changed.add(path)
    return FileError(str(path), f"{path}: changed while prepare was reading it (an agent still writing it?); "
                                "skipped: prepare a copy, or rerun when it is idle")


@dataclass
class Sink:
    """Where the render pass's results go, in order."""

    rows: dict[str, Rows]
    episodes: dict[str, TextIO]


def render_pass(survey: Survey, catalog, split, system: str | None, workers: Workers, sink: Sink, stats,
                counts, progress: Progress | None) -> None:
    """Pass 3: every Episode rendered by the workers, appended to ``sink`` and the stats in read order."""
    eval_ids = set(split.eval_ids)
    metas = survey.sessions

    def tasks():
        for n, meta in enumerate(metas):
            which = "eval" if meta.id in eval_ids else "train"
            family = split.families.get(meta.id, meta.id)
            tools = catalog.for_session(meta.tool_stub())
            for e in range(meta.episodes):
                yield (n, e, which, family), EpisodeTask(meta.spill, meta.index, e, tools, system, family, which)
            if not meta.episodes and progress:
                progress("render", n + 1, len(metas))

    for (n, e, which, family), out in workers.run(render_episode, tasks()):
        meta = metas[n]
        _append(meta, which, family, out, sink, stats, counts)
        if progress and e == meta.episodes - 1:
            progress("render", n + 1, len(metas))


def _append(meta, which: str, family: str, out, sink: Sink, stats, counts) -> None:
    stats.episodes += 1
    counts.add(out.counts)
    if not out.targets:
        stats.episodes_without_targets += 1
        return
    stats.targets_after_filters += out.targets
    stats.add_episode(which, out.figures, out.tool_names)
    stats.add_session_episode(meta, which, out.targets, out.figures)
    from array import array

    for ids, mask, window, tokens, supervised, messages in out.rows:
        row_ids = array("i")
        row_ids.frombytes(ids)
        sink.rows[which].add_row(row_ids, mask, out.episode_id, meta.id, family, window, tokens, supervised, messages,
                                 out.tools_json)
    sink.episodes[which].write(out.record + "\n")
