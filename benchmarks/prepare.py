"""Benchmark ``tracetune prepare``: trajectory windows vs per-turn examples.

    python benchmarks/prepare.py [TRACES ...] [--lengths 2048 4096]

Defaults to ``../shared/traces/pi/``. Builds the tiny student (seed 0) in a
temporary folder and prepares the traces with each strategy at each max
length, printing a Markdown table: seconds (whole ``prepare`` call, and the
rendering part), assistant turns supervised, fraction of trainable turns kept,
tokens forwarded per supervised token. per-turn runs three ways: the last 18
messages (the reference recipe's cut, dropped when too long), the whole
history, and the history cut from the front until it fits (a stronger baseline).

The closing lines compare tokens per supervised token only between variants that
keep a comparable share of the trainable turns: a variant that drops most turns
(per-turn with the whole history keeps the few short early ones) forwards few
tokens for what it keeps, and a ratio against it says nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.stage import load_student_tokenizer, prepare
from tracetune.train.student import build_tiny_student

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "pi"
VARIANTS = (("trajectory", 0, False), ("per-turn", 18, False), ("per-turn", 0, False), ("per-turn", 0, True))


def run(traces: list[str], lengths: list[int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        student = build_tiny_student(Path(tmp) / "tiny", seed=0)
        tokenizer = load_student_tokenizer(PrepareConfig(student=str(student)))
        for length in lengths:
            for strategy, history, fit in VARIANTS:
                config = PrepareConfig(
                    student=str(student), strategy=strategy, max_length=length, per_turn_history=history, per_turn_fit=fit
                )
                started = time.perf_counter()
                result = prepare(config, traces, Path(tmp) / f"out-{strategy}-{length}-{history}-{fit}", tokenizer=tokenizer)
                seconds = time.perf_counter() - started
                s = result.stats.model_dump()  # prepare_stats.json's layout
                rows.append(
                    {
                        "strategy": _label(strategy, history, fit),
                        "max_length": length,
                        "seconds": seconds,
                        "render_seconds": s["seconds"]["render"],
                        "supervised": s["turns"]["supervised"],
                        "trainable": s["turns"]["trainable"],
                        "kept": s["turns"]["kept_fraction"] or 0.0,
                        "examples": s["windows"],
                        "tokens": s["tokens"]["total"],
                        "ratio": s["tokens"]["tokens_per_supervised_token"],
                    }
                )
    return rows


def _label(strategy: str, history: int, fit: bool) -> str:
    if strategy == "trajectory":
        return strategy
    if fit:
        return "per-turn (history cut to fit)"
    return f"per-turn (last {history} msgs)" if history else "per-turn (whole history)"


def table(rows: list[dict]) -> str:
    lines = [
        "| strategy | max length | seconds (render) | turns supervised | kept | examples | tokens forwarded | tokens per supervised token |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.1f}" if r["ratio"] else "-"
        lines.append(
            f"| {r['strategy']} | {r['max_length']} | {r['seconds']:.1f} ({r['render_seconds']:.1f}) | "
            f"{r['supervised']} / {r['trainable']} | {100 * r['kept']:.1f}% | {r['examples']} | {r['tokens']:,} | {ratio} |"
        )
    return "\n".join(lines)


#: A variant is compared by tokens per supervised token only if it keeps at least this share of trajectory's turns.
COMPARABLE = 0.9


def comparison(traj: dict, other: dict) -> str:
    """One line: trajectory against ``other``, by tokens per supervised token when both keep comparable turns."""
    kept = f"{other['strategy']} keeps {other['supervised']:,} turns, trajectory {traj['supervised']:,}"
    if not other["ratio"] or not traj["ratio"] or other["supervised"] < COMPARABLE * traj["supervised"]:
        return f"{kept}: not comparable by tokens per supervised token"
    return (f"{kept}; trajectory forwards {other['ratio'] / traj['ratio']:.1f}x fewer tokens per supervised token "
            f"({traj['ratio']:.1f} against {other['ratio']:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", default=[str(DEFAULT)])
    parser.add_argument("--lengths", nargs="+", type=int, default=[2048, 4096])
    args = parser.parse_args()
    rows = run(args.traces, args.lengths)
    print(table(rows))
    for length in args.lengths:
        traj = next(r for r in rows if r["max_length"] == length and r["strategy"] == "trajectory")
        for r in rows:
            if r["max_length"] == length and r is not traj:
                print(f"max_length {length}: {comparison(traj, r)}")


if __name__ == "__main__":
    main()
