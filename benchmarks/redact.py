"""How long redaction takes (run by hand; see docs/benchmarks.md, "Redaction").

    python benchmarks/redact.py [FILE ...] [--repeat N]
    python benchmarks/redact.py --scan DIR [DIR ...]    # precision: what it redacts in ordinary code

Default FILE: ../shared/traces/pi/before-compaction.jsonl (2.4 MB). Reads the
sessions once, then times ``redact_sessions`` with the default options, with
detect-secrets off, and with the entropy plugins on. Also times three
synthetic worst cases (a 1 MB base64 line, 1.4 MB of minified JavaScript,
1 MB of secret-looking assignments) that once hit quadratic paths.

``--scan`` redacts every .py/.md file under the given folders (secrets only)
and prints what it replaced, by kind, with a few examples in context: ordinary
code should come out almost untouched.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
import random
import statistics
import string
import time
from pathlib import Path

from tracetune.prepare.redact import RedactOptions, Redactor, redact_sessions
from tracetune.readers.discover import read_file

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "pi" / "before-compaction.jsonl"


def _time(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def _synthetic() -> dict[str, str]:
    rng = random.Random(0)
    return {
        "base64, one 1 MB line": "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(1_000_000)),
        "minified JS, 1.4 MB": "".join(f'var a{i}="https://cdn{i}.example.com/x/{i}.js";f(a{i},"//x{i}");' for i in range(20000)),
        "assignments, 1 MB": "\n".join(f"API_KEY_{i}=value{i} password: x{i} token {i}" for i in range(20000)),
    }


def scan(folders: list[Path], examples: int = 3) -> None:
    files = sorted(p for folder in folders for p in folder.rglob("*") if p.suffix in (".py", ".md") and p.is_file())
    redactor, size, shown = Redactor(RedactOptions(paths=False)), 0, Counter()
    start = time.perf_counter()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="ignore")
        size += len(text)
        out = redactor.apply(text)
        for match in re.finditer(r"<REDACTED:([a-z0-9_]+):\d+>", out if out != text else ""):
            shown[match.group(1)] += 1
            if shown[match.group(1)] <= examples:
                context = out[max(0, match.start() - 60) : match.end() + 15].replace("\n", " | ")
                print(f"  {match.group(1)}: {path}: ...{context}...")
    seconds = time.perf_counter() - start
    print(f"{len(files)} files, {size / 1e6:.1f} M characters, {seconds:.1f} s; replaced: {dict(shown) or 'nothing'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scan", nargs="+", type=Path, help="folders of ordinary code to scan for false positives")
    args = parser.parse_args()
    if args.scan:
        scan(args.scan)
        return
    sessions = [s for f in args.files for s in read_file(f)[1]]
    size = sum(f.stat().st_size for f in args.files) / 1e6
    _, report = redact_sessions(sessions)
    print(f"{size:.1f} MB of traces, {len(sessions)} session(s), {report.texts} distinct texts, "
          f"{report.chars / 1e6:.2f} M characters scanned")
    for label, options in [
        ("default", RedactOptions()),
        ("detect-secrets off", RedactOptions(detect_secrets=False)),
        ("high_entropy on", RedactOptions(high_entropy=True)),
    ]:
        best, median = _time(lambda: redact_sessions(sessions, options), args.repeat)
        print(f"redact_sessions, {label}: best {best:.2f} s, median {median:.2f} s")
    for label, text in _synthetic().items():
        best, _ = _time(lambda: Redactor().apply(text), 1)
        print(f"worst case, {label}: {best:.2f} s")


if __name__ == "__main__":
    main()
