"""Training speed of a run's recipe with and without ``decision_weight`` (run by hand).

    python benchmarks/decision_weight.py --run runs/NAME [--steps 12] [--weights 1 5]

Trains the run's student on the run's prepared data for ``--steps`` steps per weight, with the
CPU example's settings (lr 2e-3, LoRA r 16, max_length 2048, batch 1, gradient checkpointing,
bf16), and prints the wall time and the ``tokens_per_second`` of each log
(docs/benchmarks.md, "Session 9").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Parse the flags and time one short training per weight."""
    from tracetune.train.config import TrainConfig
    from tracetune.train.trainer import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run folder (prepare/ and student/)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 5.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracetune-dw-") as work:
        for weight in args.weights:
            config = TrainConfig(
                model=str(args.run / "student"), learning_rate=2e-3, max_steps=args.steps,
                gradient_checkpointing=True, gradient_accumulation_steps=1, per_device_train_batch_size=1,
                max_length=2048, lora_r=16, bf16=True, eval_before_train=False, eval_max_tokens=1,
                report_to="none", logging_steps=max(1, args.steps // 3), save_steps=10**6,
                decision_weight=weight, seed=0,
            )
            start = time.perf_counter()
            result = train(config, args.run / "prepare", Path(work) / f"w{weight}")
            rates = [h["tokens_per_second"] for h in result.history if "tokens_per_second" in h]
            print(f"decision_weight {weight}: {time.perf_counter() - start:.1f} s, tokens/s {rates}", flush=True)


if __name__ == "__main__":
    main()
