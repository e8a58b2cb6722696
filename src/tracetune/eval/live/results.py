"""What one live episode and one live run produced, and the scores over them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

EndedBy = Literal["reply", "truncated", "max_turns", "parse_error", "generation_error", "timeout"]  # timeout: pi harness only


@dataclass(frozen=True)
class EpisodeResult:
    task_id: str
    split: str
    difficulty: str
    success: bool  # the task's check command exited 0 after the episode
    ended_by: EndedBy
    turns: int  # assistant turns generated
    tool_calls: int
    valid_calls: int  # calls naming a known tool with arguments that fit its schema
    prompt_tokens: int
    completion_tokens: int
    session_path: str
    parse_errors: tuple[str, ...] = ()
    check_output: str = ""  # the tail of the check command's output
    error: str | None = None  # a generation error, when ended_by == "generation_error"
    seconds: float = 0.0

    @property
    def ended_by_itself(self) -> bool:
        """Whether the model ended the episode with a reply rather than hitting a limit or an error."""
        return self.ended_by == "reply"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class LiveResult:
    backend: str
    settings: dict[str, Any]
    episodes: tuple[EpisodeResult, ...] = field(default_factory=tuple)
    sandbox: dict[str, Any] = field(default_factory=dict)  # how commands were confined (sandbox.mode_record)

    def summary(self, episodes: tuple[EpisodeResult, ...] | None = None) -> dict[str, Any]:
        """Rates, counts and means over ``episodes`` (all of this result's by default)."""
        eps = list(self.episodes if episodes is None else episodes)
        calls = sum(e.tool_calls for e in eps)
        return {
            "episodes": len(eps),
            "success_rate": _mean([float(e.success) for e in eps]),
            "successes": sum(e.success for e in eps),
            "self_ended_rate": _mean([float(e.ended_by_itself) for e in eps]),
            "valid_call_rate": sum(e.valid_calls for e in eps) / calls if calls else 0.0,
            "tool_calls": calls,
            "parse_failures": sum(len(e.parse_errors) for e in eps),
            "mean_turns": _mean([e.turns for e in eps]),
            "mean_tokens": _mean([e.prompt_tokens + e.completion_tokens for e in eps]),
            "mean_completion_tokens": _mean([e.completion_tokens for e in eps]),
            "ended_by": {k: sum(e.ended_by == k for e in eps) for k in ("reply", "truncated", "max_turns", "parse_error", "generation_error", "timeout")},
        }

    def by(self, key: str) -> dict[str, dict[str, Any]]:
        """A ``summary`` per value of the episode field ``key`` (``split``, ``difficulty``)."""
        groups: dict[str, list[EpisodeResult]] = {}
        for e in self.episodes:
            groups.setdefault(getattr(e, key), []).append(e)
        return {k: self.summary(tuple(v)) for k, v in sorted(groups.items())}

    def to_dict(self) -> dict[str, Any]:
        """This result as a JSON-ready dict: settings, summaries (overall, by split and difficulty), episodes."""
        return {
            "backend": self.backend,
            "settings": self.settings,
            "sandbox": self.sandbox,
            "summary": self.summary(),
            "by_split": self.by("split"),
            "by_difficulty": self.by("difficulty"),
            "episodes": [asdict(e) for e in self.episodes],
        }


def run_suite(
    config: Any,
    name: str,
    run_one: Callable[[Any, Path], EpisodeResult],
    tasks: Sequence[Any] | None,
    out_dir: str | Path,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    sandbox: dict[str, Any] | None = None,
) -> LiveResult:
    """Run ``run_one(task, sessions_dir)`` on each task (default: the config's splits and ids).

    Sessions go to ``out_dir/sessions/<name>/``; the result (with ``sandbox``, how
    its commands were confined) is written to ``out_dir/live_results_<name>.json``
    and returned. Shared by both harnesses.
    """
    from tracetune.eval.live.tasks import load_tasks
    from tracetune.util.files import atomic_write_json

    chosen = list(tasks) if tasks is not None else load_tasks(config.splits, config.task_ids or None)
    out = Path(out_dir)
    episodes = []
    for task in chosen:
        episodes.append(run_one(task, out / "sessions" / name))
        if on_episode:
            on_episode(episodes[-1])
    live = LiveResult(backend=name, settings=config.model_dump(), episodes=tuple(episodes), sandbox=sandbox or {})
    atomic_write_json(out / f"live_results_{name}.json", live.to_dict(), end="")
    return live
