"""Fidelity of the tiny student, base vs tuned, on the real pi trace (run by hand).

    python benchmarks/fidelity.py [--steps 16] [--lr 3e-3] [--samples 24] [--tokens 48] [--out DIR]

The shared trace (``../shared/traces/pi/before-compaction.jsonl``) is one
session, so a split by session family leaves eval empty. This script holds out
by Episode instead: prepare everything as train, then move the last Episode
(the part after the second compaction) to eval, both in the dataset and in
``eval_episodes.jsonl``. It then trains a LoRA adapter on the rest (CPU) and
runs ``tracetune.eval.stage.evaluate`` on the held-out Episode.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

TRACE = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "pi" / "before-compaction.jsonl"


def hold_out_last_episode(src: Path, dst: Path, eval_rows: int = 6) -> str:
    """Copy prepare's output with the last Episode moved from train to eval."""
    from datasets import Dataset, DatasetDict

    records = [json.loads(line) for line in (src / "train_episodes.jsonl").read_text().splitlines() if line.strip()]
    held = records[-1]["tracetune"]["episode_id"]
    rows = Dataset.load_from_disk(str(src / "dataset" / "train"))
    held_rows = rows.filter(lambda r: r["episode_id"] == held)
    DatasetDict({
        "train": rows.filter(lambda r: r["episode_id"] != held),
        "eval": held_rows.select(range(min(eval_rows, len(held_rows)))),  # eval loss only; kept small for CPU
    }).save_to_disk(str(dst / "dataset"))
    (dst / "train_episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:-1]))
    (dst / "eval_episodes.jsonl").write_text(json.dumps(records[-1]) + "\n")
    for name in ("student.json", "tools.json", "prepare_stats.json"):
        shutil.copy(src / name, dst / name)
    return held


def main() -> None:
    from tracetune.eval.config import EvalConfig
    from tracetune.eval.stage import evaluate
    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import prepare
    from tracetune.train.config import TrainConfig
    from tracetune.train.student import build_tiny_student
    from tracetune.train.trainer import train

    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--tokens", type=int, default=128)  # a pi tool call with absolute paths is often > 48 tokens
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="tracetune-fidelity-"))
    timings = {}

    t = time.perf_counter()
    student = build_tiny_student(out / "student")
    prepare(PrepareConfig(student=str(student), max_length=args.max_length, eval_fraction=0.0, clip_tool_result_chars=1000),
            [TRACE], out / "prepare_all")
    held = hold_out_last_episode(out / "prepare_all", out / "prepare")
    timings["build + prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    cfg = TrainConfig(model=str(student), max_length=args.max_length, max_steps=args.steps, per_device_batch_size=1,
                      grad_accumulation=1, lr=args.lr, lora_r=16, report_to="none", eval_before_train=False,
                      logging_steps=2, save_steps=10_000)
    result = train(cfg, out / "prepare" / "dataset", out / "train")
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    ev = EvalConfig(max_samples=args.samples, max_new_tokens=args.tokens, max_prompt_tokens=args.max_length,
                    backend={"device": "cpu", "batch_size": 4})
    res = evaluate(ev, out / "prepare", str(student), result.adapter, out / "eval")
    timings["eval"] = time.perf_counter() - t

    print(f"held-out episode: {held}; output: {out}")
    print("train metrics:", {k: round(v, 4) for k, v in result.metrics.items() if isinstance(v, float)})
    for role, row in res.headline.items():
        print(role, {k.removeprefix("fidelity."): (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    print("seconds:", {k: round(v, 1) for k, v in timings.items()})


if __name__ == "__main__":
    main()
