"""Training throughput and peak memory of the tiny student on CPU.

    python benchmarks/train.py [--steps 10] [--max-length 1024] [--batch 4] [--threads 1] [--work DIR]

Builds the tiny student, prepares the real pi trace twice (``trajectory`` and
``per-turn`` with ``per_turn_fit``; tool definitions reduced to their names,
prepare's defaults otherwise), then trains each dataset with
padding, padding-free and packing, every run in its own process so peak RSS
is that run's. Prints a markdown table (docs/benchmarks.md "Training").
``tokens/s`` counts real tokens (no padding); ``supervised/s`` scales it by the
dataset's share of supervised tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

TRACE = Path(__file__).resolve().parents[2] / "shared" / "traces" / "pi" / "before-compaction.jsonl"
MODES = {"padding": {}, "padding-free": {"padding_free": True}, "packing": {"packing": True}}


def one_run(dataset: Path, student: Path, mode: str, steps: int, max_length: int, batch: int, out: Path) -> dict:
    """Train in this process and report figures (called in a child process)."""
    from tracetune.train.config import TrainConfig
    from tracetune.train.trainer import train

    config = TrainConfig(
        model=str(student), max_steps=steps, max_length=max_length, per_device_batch_size=batch,
        grad_accumulation=1, report_to="none", eval_before_train=False, save_steps=10**6, logging_steps=steps,
        **MODES[mode],
    )
    start = time.perf_counter()
    result = train(config, dataset, out)
    wall = time.perf_counter() - start
    train_split = result.data["train"]
    tps = result.metrics["train_tokens_per_second"]
    return {
        "tokens_per_second": tps,
        "supervised_per_second": tps * train_split.supervised_tokens / max(train_split.tokens, 1),
        "train_runtime_s": result.metrics["train_runtime"],
        "wall_s": wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "examples": train_split.kept,
        "mean_tokens": train_split.tokens / max(train_split.kept, 1),
    }


def _short_tools(path: Path) -> Path:
    """pi's four tools by name only: the tiny tokenizer spends ~700 tokens on the full schemas."""
    spec = {"type": "object", "properties": {}}
    names = ("read", "bash", "edit", "write")
    path.write_text(json.dumps({"tools": [{"type": "function", "function": {"name": n, "parameters": spec}} for n in names]}))
    return path


def prepare_all(work: Path, student: Path, max_length: int) -> dict[str, Path]:
    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import prepare

    out = {}
    for strategy in ("trajectory", "per-turn"):
        folder = work / f"data-{strategy}-{max_length}"
        if not (folder / "dataset").exists():
            config = PrepareConfig(student=str(student), max_length=max_length, strategy=strategy, per_turn_fit=True,
                                   eval_fraction=0.0, tools_file=str(_short_tools(work / "tools.json")))
            prepare(config, [TRACE], folder)
        out[strategy] = folder
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (1 suits a shared machine)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tracetune-train-bench"))
    parser.add_argument("--one", nargs=3, metavar=("DATASET", "STUDENT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        dataset, student, mode = args.one
        out = args.work / "runs" / f"{Path(dataset).name}-{mode}-{os.getpid()}"
        print(json.dumps(one_run(Path(dataset), Path(student), mode, args.steps, args.max_length, args.batch, out)))
        return

    from tracetune.train.student import build_tiny_student

    args.work.mkdir(parents=True, exist_ok=True)
    student = args.work / "student"
    if not (student / "config.json").exists():
        build_tiny_student(student, seed=0)
    datasets = prepare_all(args.work, student, args.max_length)
    print(f"tiny student, {args.steps} steps x batch {args.batch}, max length {args.max_length}, "
          f"{os.cpu_count()} CPUs, {args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f}\n")
    print("| dataset | mode | examples | mean tokens | tokens/s | supervised/s | peak RSS | wall |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for strategy, dataset in datasets.items():
        for mode in MODES:
            cmd = [sys.executable, __file__, "--one", str(dataset), str(student), mode, "--steps", str(args.steps),
                   "--max-length", str(args.max_length), "--batch", str(args.batch), "--work", str(args.work),
                   "--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(f"| {strategy} | {mode} | failed: {done.stderr.strip().splitlines()[-1]} |")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {strategy} | {mode} | {r['examples']} | {r['mean_tokens']:.0f} | {r['tokens_per_second']:.0f} | "
                  f"{r['supervised_per_second']:.0f} | {r['peak_rss_mb']:.0f} MB | {r['wall_s']:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
