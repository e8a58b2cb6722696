"""How long reading a session file takes (run by hand; see docs/benchmarks.md).

    python benchmarks/read.py [FILE] [--repeat N]

Default FILE: ../shared/traces/pi/before-compaction.jsonl (2.4 MB, 1,003 lines).
Prints the best and median wall time of ``tracetune.readers.registry`` detection + read.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from tracetune.readers.discover import read_file

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "pi" / "before-compaction.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        fmt, sessions = read_file(args.file)
        times.append(time.perf_counter() - start)
    turns = sum(s.assistant_turns for s in sessions)
    size = args.file.stat().st_size / 1e6
    print(f"{args.file.name}: {size:.1f} MB, format {fmt}, {len(sessions)} session(s), {turns} assistant turns")
    print(f"read: best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms over {args.repeat} runs")


if __name__ == "__main__":
    main()
