"""Write a large synthetic Claude Code session, to time the reader on it (run by hand).

    python benchmarks/synth_claude_code.py OUT.jsonl [--turns 5000] [--branches 50]
    python benchmarks/read.py OUT.jsonl

One chain of TURNS (user prompt, assistant tool_use, tool_result) plus BRANCHES retried
prompts hanging off random tool results, so the file has BRANCHES + 1 leaves. See
docs/benchmarks.md for the figures.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def lines(turns: int, branches: int, seed: int = 0):
    parent = None
    for i in range(turns):
        for kind, uuid, message in (
            ("user", f"u{i}", {"role": "user", "content": f"step {i} " + "x" * 200}),
            ("assistant", f"a{i}", {"id": f"m{i}", "role": "assistant", "model": "claude-opus-4-6",
                                    "content": [{"type": "tool_use", "id": f"t{i}", "name": "Bash",
                                                 "input": {"command": "ls " + "y" * 100}}]}),
            ("user", f"r{i}", {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{i}",
                                                           "content": "z" * 300}]}),
        ):
            yield {"type": kind, "uuid": uuid, "parentUuid": parent, "sessionId": "synth", "message": message}
            parent = uuid
    rng = random.Random(seed)
    for b in range(branches):
        at = f"r{rng.randrange(turns)}"
        yield {"type": "user", "uuid": f"bu{b}", "parentUuid": at, "sessionId": "synth",
               "message": {"role": "user", "content": "retry"}}
        yield {"type": "assistant", "uuid": f"ba{b}", "parentUuid": f"bu{b}", "sessionId": "synth",
               "message": {"id": f"bm{b}", "role": "assistant", "model": "claude-opus-4-6",
                           "content": [{"type": "text", "text": "ok"}]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--branches", type=int, default=50)
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8") as fh:
        for obj in lines(args.turns, args.branches):
            fh.write(json.dumps(obj) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
