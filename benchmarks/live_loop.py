"""Time the live-loop pieces on this machine (run by hand: python benchmarks/live_loop.py).

Prints: sandbox overhead per command, the scripted teacher's demo sessions, and the
untrained tiny student on the whole task suite (it fails the tasks; this is a speed figure).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    from tracetune.demo.teacher import generate_demo_traces
    from tracetune.eval.backends.transformers_backend import TransformersBackend
    from tracetune.eval.live import LiveConfig, run_live
    from tracetune.eval.sandbox import run_sandboxed
    from tracetune.train.student import build_tiny_student

    tmp = Path(tempfile.mkdtemp())
    for cmd in ("true", "python3 -c pass"):
        t = time.perf_counter()
        for _ in range(20):
            run_sandboxed(cmd, tmp)
        print(f"sandbox {cmd!r}: {(time.perf_counter() - t) / 20 * 1000:.1f} ms per command")
    t = time.perf_counter()
    paths = generate_demo_traces(tmp / "traces", seed=0)
    print(f"teacher: {len(paths)} pi sessions in {time.perf_counter() - t:.1f} s")
    backend = TransformersBackend(build_tiny_student(tmp / "tiny", seed=0), device="cpu", name="base")
    t = time.perf_counter()
    result = run_live(LiveConfig(splits=["train", "heldout"], max_turns=4, max_new_tokens=64), backend, None, tmp / "live")
    print(f"tiny student, {len(result.episodes)} tasks: {time.perf_counter() - t:.1f} s")
    print(json.dumps(result.summary(), indent=1))


if __name__ == "__main__":
    main()
