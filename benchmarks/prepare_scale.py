"""Peak memory and time of ``tracetune prepare`` as the number of sessions grows.

    python benchmarks/prepare_scale.py --student DIR [--template tool-aware] [--counts 10 500]
        [--workers 1] [--max-length 4096] [TRACES ...]

Makes ``N`` distinct pi sessions by copying the given ones (default: the shared
pi sessions, ``../shared/traces/pi*/``) round robin, each copy with a new session
id and every text altered (a copy tag in each user message, assistant text,
reasoning and tool result), so nothing is shared between copies but structure.
Each count runs ``prepare`` in a fresh child process and reports its wall time
and the peak resident memory of that process (and, sampled, of its largest
worker process: ``peak_rss``).
Prints a Markdown table; ``--json`` writes the figures.

Done-when of issue 19: the peak at 500 sessions is at most 1.5 times the peak at 10.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
DEFAULT = [SHARED / "pi", SHARED / "pi-users"]


def pi_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.glob("*.jsonl")) if p.is_dir() else [p])
    return out


def _alter(value, tag: str):
    """A message's content with the copy tag in every text (user, assistant, reasoning, tool result)."""
    if isinstance(value, str):
        return f"{tag} {value}"
    if isinstance(value, list):
        out = []
        for part in value:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part = {**part, "text": f"{tag} {part['text']}"}
            elif isinstance(part, dict) and isinstance(part.get("thinking"), str):
                part = {**part, "thinking": f"{tag} {part['thinking']}"}
            out.append(part)
        return out
    return value


def copy_session(source: Path, target: Path, copy: int) -> None:
    """``source`` (pi JSONL) written to ``target`` with a new session id and every text tagged."""
    tag = f"[copy {copy}: {uuid.uuid5(uuid.NAMESPACE_URL, f'{copy}-{source.name}').hex[:12]}]"
    lines = []
    for raw in source.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            lines.append(raw)
            continue
        if not isinstance(entry, dict):
            lines.append(raw)
            continue
        if entry.get("type") == "session":
            entry["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tracetune-bench-{copy}-{source.name}"))
            entry.pop("branchedFrom", None)
            entry.pop("parentSession", None)
        message = entry.get("message")
        if isinstance(message, dict) and "content" in message:
            entry["message"] = {**message, "content": _alter(message["content"], tag)}
        lines.append(json.dumps(entry, ensure_ascii=False))
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_corpus(sources: list[Path], count: int, folder: Path) -> Path:
    """``count`` distinct sessions in ``folder`` (one file each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        source = sources[k % len(sources)]
        copy_session(source, folder / f"copy{k:05d}-{source.name}", k)
    return folder


def timed_prepare(args: argparse.Namespace):
    """``prepare`` on ``args.corpus`` with the benchmark's settings: (config, tokenizer, result, seconds, the peak
    RSS in MB of any one worker process, 0 without)."""
    from peak_rss import TreePeak

    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import load_student_tokenizer, prepare

    config = PrepareConfig(student=args.student, chat_template=args.template, max_length=args.max_length,
                           long_turns=args.long_turns)
    tokenizer = load_student_tokenizer(config)
    started = time.perf_counter()
    with TreePeak() as peak:
        result = prepare(config, [args.corpus], args.out, tokenizer=tokenizer, workers=args.workers)
    return config, tokenizer, result, time.perf_counter() - started, peak.children_mb


def child(args: argparse.Namespace) -> None:
    """Run prepare once and print its figures as JSON (what the parent measures)."""
    import resource

    _, _, result, seconds, workers_mb = timed_prepare(args)
    s = result.stats.model_dump()  # prepare_stats.json's layout
    print(json.dumps({
        "seconds": seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers_rss_mb": workers_mb,
        "sessions": s["read"]["sessions"],
        "windows": s["windows"],
        "supervised": s["turns"]["supervised"],
        "trainable": s["turns"]["trainable"],
        "tokens": s["tokens"]["total"],
        "stage_seconds": s["seconds"],
    }))


def run(args: argparse.Namespace) -> list[dict]:
    sources = pi_files(args.traces or DEFAULT)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tracetune-scale-") as tmp:
        for count in args.counts:
            corpus = make_corpus(sources, count, Path(tmp) / f"corpus{count}")
            cmd = [sys.executable, __file__, "--child", "--corpus", str(corpus), "--out", str(Path(tmp) / f"out{count}"),
                   "--student", args.student, "--max-length", str(args.max_length), "--workers", str(args.workers),
                   "--long-turns", args.long_turns]
            if args.template:
                cmd += ["--template", args.template]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            figures["count"] = count
            rows.append(figures)
            print(f"{count} sessions: {figures['seconds']:.1f} s, peak RSS {figures['rss_mb']:.0f} MB", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| sessions | seconds | s / session | peak RSS (MB) | workers' peak RSS (MB) | windows | turns kept |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['count']} | {r['seconds']:.1f} | {r['seconds'] / r['count']:.2f} | {r['rss_mb']:.0f} | "
                     f"{r['workers_rss_mb']:.0f} | {r['windows']:,} | {r['supervised']:,} / {r['trainable']:,} |")
    first, last = rows[0], rows[-1]
    lines.append("")
    lines.append(f"Peak RSS at {last['count']} sessions is {last['rss_mb'] / first['rss_mb']:.2f} times the peak at {first['count']}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", type=Path)
    parser.add_argument("--student", required=True)
    parser.add_argument("--template", default=None)
    parser.add_argument("--counts", nargs="+", type=int, default=[10, 500])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--long-turns", default="drop")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = run(args)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
