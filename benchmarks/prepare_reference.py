"""tracetune prepare against the reference recipe's converter, same sessions, same tokenizer, one run.

    python benchmarks/prepare_reference.py --reference TRAIN_SFT_PY --student DIR [--template tool-aware]
        [--max-length 4096] [--copies N] [--workers 1 2] [--rounds N] [TRACES ...]

The reference is ``examples/gemma4-pi-mono-sft/train_sft.py`` of
github.com/burtenshaw/training-agents, fetched by you and never copied here
(``git clone https://github.com/burtenshaw/training-agents``; pass the file's
path). Its ``build_examples`` (one prompt/completion example per assistant
message, the last 18 messages as context) and ``filter_examples_by_length``
(drop what exceeds ``--max-length``) are imported from that file and timed;
its ``load_processor`` loads the same tokenizer tracetune renders with (the
student's, with ``--template`` applied, saved to a temporary folder), so both
count the same tokens.

Sessions: the given pi session files or folders (default: the shared pi
sessions), or with ``--copies N``, N distinct copies of them
(``prepare_scale.make_corpus``). Each converter runs in its own child process
(peak RSS of that process; tracetune's largest worker process, sampled, reported apart).

Columns: turns kept (of the turns each converter calls trainable: the reference
every assistant message after a user message, tracetune the teacher turns left
after its filters), tokens forwarded per supervised token, the share of
assistant tokens supervised (of the completions the reference built, of the
target turns tracetune rendered), seconds (reference: build + filter;
tracetune: the whole ``prepare`` call, reading, redaction and writing
included) and peak RSS. The one-pass column is each Episode rendered whole,
once, every target supervised: the limit no windowing can beat.

``--rounds N`` runs every converter N times, in turn (reference, then each
tracetune column, then again), and reports the median seconds, with each
round's: this machine's speed drifts by a third within an hour, which a single
two-minute reference run cannot tell from a difference between converters.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prepare_scale import DEFAULT, make_corpus, pi_files, timed_prepare


def _rss() -> tuple[float, float]:
    import resource

    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def reference_child(args: argparse.Namespace) -> dict:
    spec = importlib.util.spec_from_file_location("reference_train_sft", args.reference)
    ref = importlib.util.module_from_spec(spec)
    sys.modules["reference_train_sft"] = ref
    spec.loader.exec_module(ref)
    sys.argv = [str(args.reference), "--raw-dir", args.corpus, "--model-id", args.tokenizer_dir,
                "--max-length", str(args.max_length)]
    options = ref.parse_args()
    processor = ref.load_processor(options.model_id)
    started = time.perf_counter()
    examples, _ = ref.build_examples(Path(options.raw_dir), processor, options)
    built = time.perf_counter()
    kept, _ = ref.filter_examples_by_length(processor, examples, options)
    seconds = time.perf_counter() - started
    rss = _rss()
    tokenizer = getattr(processor, "tokenizer", processor)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    completion = [count(e["completion"]) for e in examples]
    kept_ids = {id(e) for e in kept}
    forwarded = sum(count(e["prompt"] + e["completion"]) for e in kept)
    supervised = sum(n for e, n in zip(examples, completion) if id(e) in kept_ids)
    return {"turns": len(examples), "kept": len(kept), "forwarded": forwarded, "supervised": supervised,
            "assistant_tokens": sum(completion), "seconds": seconds, "build_seconds": built - started,
            "rss_mb": rss[0], "workers_rss_mb": rss[1]}


def tracetune_child(args: argparse.Namespace) -> dict:
    config, tokenizer, result, seconds, workers_mb = timed_prepare(args)
    rss = (_rss()[0], workers_mb)
    s = result.stats.model_dump()  # prepare_stats.json's layout
    limit = one_pass(config, tokenizer, args.corpus) if args.one_pass else {}
    return {"turns": s["turns"]["trainable"], "kept": s["turns"]["supervised"], "forwarded": s["tokens"]["total"],
            "supervised": s["tokens"]["supervised"], "seconds": seconds, "stage_seconds": s["seconds"],
            "truncated": s["turns"].get("truncated", 0), "rss_mb": rss[0], "workers_rss_mb": rss[1], **limit}


def one_pass(config, tokenizer, corpus: str) -> dict:
    """Every Episode rendered whole once: its tokens, and the tokens of its target turns (all supervised)."""
    from tracetune.prepare.conversations import ConversationCounts, convert_episode, to_conversation
    from tracetune.prepare.pieces import RenderedEpisode
    from tracetune.prepare.redact import redact_sessions
    from tracetune.prepare.tools import ToolCatalog
    from tracetune.readers import read_paths

    sessions, _ = redact_sessions(read_paths([corpus]).sessions, config.redaction)
    catalog = ToolCatalog.from_sessions(sessions)
    total = assistant = 0
    for session in sessions:
        for episode in session.episodes:
            converted = convert_episode(episode, config, ConversationCounts())
            if not converted.target_indices:
                continue
            conv = to_conversation(session, converted, catalog.for_session(session), session.system_prompt)
            rendered = RenderedEpisode.build(tokenizer, conv.with_system([]), conv.messages, conv.tools, conv.targets)
            if rendered is None:
                continue
            total += rendered.head_tokens + sum(len(p.ids) for p in rendered.segments)
            assistant += sum(sum(p.mask) for p in rendered.segments if p.span is not None)
    return {"one_pass_tokens": total, "assistant_tokens": assistant}


def _child(kind: str, args: argparse.Namespace, corpus: Path, tmp: Path, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--corpus", str(corpus), "--student", args.student,
           "--max-length", str(args.max_length), "--reference", str(args.reference or ""),
           "--tokenizer-dir", str(tmp / "tokenizer"), "--out", str(tmp / f"out-{kind}-{len(list(tmp.iterdir()))}")]
    if args.template:
        cmd += ["--template", args.template]
    for key, value in extra.items():
        flag = f"--{key.replace('_', '-')}"
        cmd += [flag] if value is True else [] if value is False else [flag, str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict:
    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import load_student_tokenizer

    sources = pi_files(args.traces or DEFAULT)
    out: dict = {"sessions": args.copies or len(sources), "max_length": args.max_length}
    with tempfile.TemporaryDirectory(prefix="tracetune-vs-reference-") as name:
        tmp = Path(name)
        corpus = tmp / "corpus"
        if args.copies:
            make_corpus(sources, args.copies, corpus)
        else:
            corpus.mkdir()
            for path in sources:
                shutil.copyfile(path, corpus / path.name)
        tokenizer = load_student_tokenizer(PrepareConfig(student=args.student, chat_template=args.template))
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        for _ in range(args.rounds):
            if args.reference:
                _record(out, "reference", _child("reference", args, corpus, tmp))
            for workers in args.workers:
                key = f"tracetune_w{workers}"
                _record(out, key, _child("tracetune", args, corpus, tmp, workers=workers, long_turns="drop",
                                         one_pass=workers == args.workers[0] and key not in out))
            _record(out, "tracetune_truncate", _child("tracetune", args, corpus, tmp, workers=args.workers[-1],
                                                      long_turns="truncate"))
    for value in out.values():
        if isinstance(value, dict):
            value["seconds"] = statistics.median(value["rounds"])
    return out


def _record(out: dict, key: str, got: dict) -> None:
    """Keep the first round's figures under ``key`` and every round's seconds in its ``rounds``."""
    out.setdefault(key, {**got, "rounds": []})["rounds"].append(got["seconds"])
    print(f"{key}: {got['seconds']:.1f} s", file=sys.stderr)


def table(result: dict) -> str:
    n = result["sessions"]
    one = next(v for k, v in result.items() if k.startswith("tracetune_w"))
    cols = [(k, v) for k, v in result.items() if isinstance(v, dict)]
    names = {"reference": "reference", "tracetune_truncate": "tracetune, long turns truncated"}
    head = " | ".join(names[k] if k in names else f"tracetune, {k.split('_w')[1]} worker(s)" for k, _ in cols)
    lines = [f"| {n} sessions, max length {result['max_length']} | {head} | one-pass limit |",
             "| --- |" + " ---: |" * (len(cols) + 1)]

    def row(label, fn, limit):
        lines.append(f"| {label} | " + " | ".join(fn(v, k) for k, v in cols) + f" | {limit} |")

    def assistant_total(v, k):
        return v["assistant_tokens"] if k == "reference" else one["assistant_tokens"]

    row("turns kept", lambda v, k: f"{v['kept']:,} / {v['turns']:,} ({100 * v['kept'] / v['turns']:.1f}%)", "100%")
    row("tokens forwarded per supervised token", lambda v, k: f"{v['forwarded'] / v['supervised']:.2f}",
        f"{one['one_pass_tokens'] / one['assistant_tokens']:.2f}")
    row("assistant tokens supervised", lambda v, k: f"{100 * v['supervised'] / assistant_total(v, k):.0f}%", "100%")
    rounds = len(one["rounds"])
    median = "median " if rounds > 1 else ""
    row(f"{median}seconds (per session)", lambda v, k: f"{v['seconds']:.1f} ({v['seconds'] / n:.2f})", "")
    if rounds > 1:
        row("seconds, each round", lambda v, k: " / ".join(f"{s:.1f}" for s in v["rounds"]), "")
    ref = result.get("reference")
    if ref:
        row("per-session speed vs the reference", lambda v, k: f"{ref['seconds'] / v['seconds']:.1f}x", "")
    row("peak RSS, MB (workers)", lambda v, k: f"{v['rss_mb']:.0f}" + (f" ({v['workers_rss_mb']:.0f})" if v["workers_rss_mb"] else ""), "")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", type=Path)
    parser.add_argument("--reference", type=Path, help="train_sft.py of burtenshaw/training-agents (fetched by you)")
    parser.add_argument("--student", required=True)
    parser.add_argument("--template", default=None)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--copies", type=int, default=0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1, help="run every converter this many times, in turn")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=["reference", "tracetune"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer-dir", help=argparse.SUPPRESS)
    parser.add_argument("--long-turns", default="drop", help=argparse.SUPPRESS)
    parser.add_argument("--one-pass", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "reference":
        print(json.dumps(reference_child(args)))
        return
    if args.child == "tracetune":
        args.workers = args.workers[0]
        print(json.dumps(tracetune_child(args)))
        return
    result = run(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
