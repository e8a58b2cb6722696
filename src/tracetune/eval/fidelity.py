"""Offline next-action fidelity: does the student pick the teacher's next action?

Samples assistant turns (seeded, capped) from the held-out Episodes that
``prepare`` wrote to ``eval_episodes.jsonl``. Each sample is the exact context
the teacher saw (system prompt, tools, ``messages[:i]``), which the backend
renders with the student's chat template; base and tuned answer the same
samples, and every answer is scored by ``tracetune.eval.scorers``.

Samples whose context is longer than ``max_prompt_tokens`` (counted with the
first backend's tokenizer, where the backend can count) are skipped and
counted (``long_context="skip"``, the default: a shortened context is not what
the teacher saw), or windowed the way prepare windows training examples
(``long_context="window"``): system prompt, the task's first user message
with a marker naming how many messages were left out, then the most recent
messages from a turn boundary that fit. When not even the most recent turn fits,
its texts (the task, tool results, earlier call arguments) are squeezed as
prepare squeezes a training window's context (``SQUEEZE_LEVELS``), so eval
keeps the turns training kept. Windowed and squeezed samples are counted and
flagged in the results.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tracetune.conversation.types import Message, ToolSpec
from tracetune.conversation.wire import WireError, episode_from_wire, message_to_wire
from tracetune.errors import TracetuneError
from tracetune.eval.backends.base import Backend, Generation, GenerationRequest
from tracetune.eval.config import EvalConfig, ModelRole
from tracetune.eval.scorers import TurnScore, score_turn
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.planner import SQUEEZE_LEVELS, window_body, window_task

#: The task's first user message in a windowed context when unset, as prepare's default.
HEAD_USER_CHARS = PrepareConfig.model_fields["head_user_chars"].default
WINDOW_MARKER = PrepareConfig.model_fields["window_marker"].default

Progress = Callable[[str, int, int], None]  # (model role, done, total)


@dataclass(frozen=True)
class Sample:
    id: str  # "<episode id>#<message index>"
    episode_id: str
    index: int
    messages: list[dict[str, Any]]  # wire shape, system prompt first
    tools: tuple[ToolSpec, ...]
    teacher: Message
    omitted: int = 0  # messages left out of a windowed context (0: the exact context)
    squeezed: int | None = None  # per-text character limit a squeezed window's context was clipped to

    def request(self, config: EvalConfig) -> GenerationRequest:
        """The generation request for this sample, with the generation settings of ``config``."""
        return GenerationRequest(
            messages=self.messages, tools=[t.to_openai() for t in self.tools],
            max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed,
        )


@dataclass
class SamplingStats:
    episodes: int = 0
    bad_lines: int = 0
    bad_line_reasons: list[str] = field(default_factory=list)
    candidates: int = 0  # target assistant turns in the eval split
    examined: int = 0
    skipped_too_long: int = 0
    windowed: int = 0
    squeezed: int = 0  # windowed samples whose context texts were also clipped to fit
    kept: int = 0


@dataclass(frozen=True)
class ModelAnswer:
    generation: Generation
    score: TurnScore


@dataclass
class FidelityRun:
    samples: list[Sample]
    answers: dict[str, list[ModelAnswer]]  # role -> one answer per sample
    stats: SamplingStats
    seconds: dict[str, float]
    model_ids: dict[str, str]


def read_episodes(path: Path, stats: SamplingStats) -> list[tuple[Any, tuple[ToolSpec, ...], str | None]]:
    """Every Episode of an ``eval_episodes.jsonl``; bad lines are counted with their reason, not fatal."""
    if not path.is_file():
        raise TracetuneError(f"{path} does not exist", hint="run `tracetune prepare` first; eval reads its eval split")
    episodes = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                episodes.append(episode_from_wire(json.loads(line), default_id=f"line{lineno}"))
            except (json.JSONDecodeError, WireError) as exc:
                stats.bad_lines += 1
                stats.bad_line_reasons.append(f"line {lineno}: {exc}")
    stats.episodes = len(episodes)
    return episodes


def build_candidates(episodes: Sequence[tuple[Any, tuple[ToolSpec, ...], str | None]]) -> list[Sample]:
    """One ``Sample`` per target assistant turn, its context being the messages before it."""
    samples = []
    for episode, tools, system in episodes:
        head = [{"role": "system", "content": system}] if system else []
        wire = [message_to_wire(m, include_meta=False) for m in episode.messages]
        for i in episode.target_indices:
            samples.append(Sample(f"{episode.id}#{i}", episode.id, i, head + wire[:i], tools, episode.messages[i]))
    return samples


def choose_samples(candidates: list[Sample], config: EvalConfig, stats: SamplingStats,
                   count_tokens: Callable[[GenerationRequest], int] | None = None) -> list[Sample]:
    """A seeded shuffle, walked until ``max_samples`` fit the prompt cap; returned in file order."""
    order = list(range(len(candidates)))
    random.Random(config.seed).shuffle(order)
    kept: dict[int, Sample] = {}
    for i in order:
        if len(kept) >= config.max_samples:
            break
        stats.examined += 1
        sample: Sample | None = candidates[i]
        if config.max_prompt_tokens and count_tokens is not None:
            if count_tokens(sample.request(config)) > config.max_prompt_tokens:
                sample = window_sample(sample, config, count_tokens) if config.long_context == "window" else None
                if sample is None:
                    stats.skipped_too_long += 1
                    continue
                stats.windowed += 1
                stats.squeezed += sample.squeezed is not None
        kept[i] = sample
    stats.kept = len(kept)
    return [kept[i] for i in sorted(kept)]


def window_sample(sample: Sample, config: EvalConfig, count_tokens: Callable[[GenerationRequest], int]) -> Sample | None:
    """The sample with its context cut to the longest recent window that fits, or None if none does.

    When even the most recent turn does not fit, its context is squeezed level by level
    (``SQUEEZE_LEVELS``, as prepare squeezes a training window); None when not even that fits.
    """
    has_system = bool(sample.messages) and sample.messages[0]["role"] == "system"
    head, body = sample.messages[:1] if has_system else [], sample.messages[1:] if has_system else sample.messages
    first_user = next((j for j, m in enumerate(body) if m["role"] == "user"), None)
    if first_user is None:
        return None
    starts = [j for j in range(first_user + 1, len(body)) if body[j]["role"] in ("user", "assistant")]
    limit = HEAD_USER_CHARS if config.head_user_chars is None else config.head_user_chars
    task = window_task(body[first_user]["content"] or "", limit)
    marker = WINDOW_MARKER if config.window_marker is None else config.window_marker

    def build(start: int, squeeze: int | None = None) -> Sample:
        window, _ = window_body(body, first_user, start, len(body) - 1, task, marker=marker, squeeze=squeeze,
                                first_target=len(body))  # the whole context comes before the turn scored
        omitted = max(0, start - first_user - 1)
        return Sample(sample.id, sample.episode_id, sample.index, head + window, sample.tools, sample.teacher, omitted, squeeze)

    def fits(candidate: Sample) -> bool:
        return count_tokens(candidate.request(config)) <= config.max_prompt_tokens

    low, high, best = 0, len(starts) - 1, None
    while low <= high:  # the earliest start (most context) that fits
        mid = (low + high) // 2
        candidate = build(starts[mid])
        if fits(candidate):
            best, high = candidate, mid - 1
        else:
            low = mid + 1
    if best is None:
        last = starts[-1] if starts else 0  # no turn after the task: the task itself is squeezed in place
        best = next((c for c in (build(last, level) for level in SQUEEZE_LEVELS) if fits(c)), None)
    return best


def complete_message(gen: Generation) -> tuple[Message | None, str | None]:
    """The message to score and the failure kind: output cut at the token cap is ``truncated``,
    output stopped repeating one span is ``looping``.

    An agent cannot act on half a message (a server reports ``finish_reason:
    length``), and counting it as a text reply would credit a model that never
    stops talking (an untrained one) with a perfect parse rate.
    """
    if not gen.finished:
        return None, "looping" if gen.looping else "truncated"
    return gen.message, gen.parse_error


def answer(backend: Backend, samples: Sequence[Sample], config: EvalConfig, chunk: int,
           progress: Progress | None = None, role: str = "") -> list[ModelAnswer]:
    """``backend``'s scored answer to each of ``samples``, asked ``chunk`` requests at a time."""
    answers: list[ModelAnswer] = []
    for start in range(0, len(samples), chunk):
        part = samples[start: start + chunk]
        for sample, gen in zip(part, backend.generate([s.request(config) for s in part])):
            tools = {t.name: t for t in sample.tools}
            message, error = complete_message(gen)
            answers.append(ModelAnswer(gen, score_turn(sample.teacher, message, tools, error)))
        if progress:
            progress(role, len(answers), len(samples))
    return answers


def run_fidelity(config: EvalConfig, eval_episodes: Path, open_backend: Callable[[ModelRole], Backend],
                 model_ids: dict[str, str], progress: Progress | None = None) -> FidelityRun:
    """Sample once, then let every configured model answer the same samples, one model at a time."""
    stats = SamplingStats()
    candidates = build_candidates(read_episodes(eval_episodes, stats))
    stats.candidates = len(candidates)
    if not candidates:
        raise TracetuneError(f"{eval_episodes} holds no assistant turn to score", hint="check the eval split in prepare's report")
    samples: list[Sample] | None = None
    answers: dict[str, list[ModelAnswer]] = {}
    seconds: dict[str, float] = {}
    for role in config.models:
        backend = open_backend(role)
        try:
            if samples is None:
                samples = choose_samples(candidates, config, stats, getattr(backend, "count_prompt_tokens", None))
                if not samples:
                    raise TracetuneError(
                        f"every examined sample is longer than max_prompt_tokens={config.max_prompt_tokens}",
                        hint="raise eval.max_prompt_tokens or leave it unset",
                    )
            start = time.perf_counter()
            answers[role] = answer(backend, samples, config, config.backend.batch_size * 4, progress, role)
            seconds[role] = time.perf_counter() - start
        finally:
            backend.close()
    return FidelityRun(samples or [], answers, stats, seconds, {r: model_ids.get(r, r) for r in config.models})
