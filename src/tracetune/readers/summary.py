"""The figures ``tracetune inspect`` shows, computed from a ``ReadResult`` (pure, no printing).

Counting rules: every assistant turn is counted once, where its Episode
judges it (``untrainable_reason != "seen"``), so shared branch prefixes and
the kept tail after a compaction are not counted twice. Tool calls and
teacher models are counted over those same turns. Families come from
``conversation.families.assign_families`` (forks and near-duplicates).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tracetune.conversation.families import assign_families
from tracetune.conversation.types import Session
from tracetune.readers.discover import ReadResult, discover


@dataclass(frozen=True)
class Figures:
    """What a set of sessions holds (one agent's, or all of them)."""

    agent: str
    files: int = 0
    sessions: int = 0
    families: int = 0
    episodes: int = 0
    assistant_turns: int = 0
    trainable_turns: int = 0
    untrainable: dict[str, int] = field(default_factory=dict)  # reason -> turns
    tool_calls: dict[str, int] = field(default_factory=dict)  # tool name -> calls
    teacher_models: dict[str, int] = field(default_factory=dict)  # model -> assistant turns
    compactions: int = 0
    branch_points: int = 0
    images: int = 0
    warnings: dict[str, int] = field(default_factory=dict)  # kind -> count
    ignored: dict[str, int] = field(default_factory=dict)  # entry type -> count, skipped on purpose


@dataclass(frozen=True)
class Unreadable:
    path: str
    message: str


@dataclass(frozen=True)
class InspectSummary:
    total: Figures
    by_agent: tuple[Figures, ...]
    unreadable: tuple[Unreadable, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """This summary as a JSON-ready dict: totals, figures by agent, unreadable files."""
        return {
            "total": asdict(self.total),
            "by_agent": {f.agent: asdict(f) for f in self.by_agent},
            "unreadable": [asdict(u) for u in self.unreadable],
        }


def _sorted(counter: Counter) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def figures(agent: str, sessions: list[Session], files: int) -> Figures:
    """The ``Figures`` of ``sessions`` read from ``files`` files, counted under ``agent``."""
    untrainable: Counter[str] = Counter()
    tools: Counter[str] = Counter()
    models: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    turns = trainable = 0
    for session in sessions:
        warnings.update(w.kind for w in session.warnings)
        ignored.update(session.stats.ignored)
        for episode in session.episodes:
            for m in episode.messages:
                if m.role != "assistant" or m.untrainable_reason == "seen":
                    continue
                turns += 1
                trainable += m.is_target
                if not m.is_target:
                    untrainable[m.untrainable_reason or "unknown"] += 1
                tools.update(c.name for c in m.tool_calls)
                models[m.model or "unknown"] += 1
    return Figures(
        agent=agent,
        files=files,
        sessions=len(sessions),
        families=len(set(assign_families(sessions).values())) if sessions else 0,
        episodes=sum(len(s.episodes) for s in sessions),
        assistant_turns=turns,
        trainable_turns=trainable,
        untrainable=_sorted(untrainable),
        tool_calls=_sorted(tools),
        teacher_models=_sorted(models),
        compactions=sum(s.stats.compactions for s in sessions),
        branch_points=sum(s.stats.branch_points for s in sessions),
        images=sum(s.stats.images for s in sessions),
        warnings=_sorted(warnings),
        ignored=_sorted(ignored),
    )


def summarise(result: ReadResult) -> InspectSummary:
    """Figures for all sessions and for each agent, plus the files that could not be read."""
    agents = sorted({s.agent for s in result.sessions})
    files_by_agent = Counter(s.agent for s in {s.source: s for s in result.sessions}.values())
    by_agent = tuple(
        figures(a, [s for s in result.sessions if s.agent == a], files_by_agent[a]) for a in agents
    )
    total = figures("all", result.sessions, len(result.formats))
    unreadable = tuple(Unreadable(e.path, e.message.removeprefix(f"{e.path}: ")) for e in result.errors)
    return InspectSummary(total=total, by_agent=by_agent, unreadable=unreadable)


def local_session_files(paths: Iterable[str | Path]) -> list[Path]:
    """The session files under the paths that exist on this machine (for a progress total)."""
    return discover([p for p in paths if Path(p).expanduser().exists()])
