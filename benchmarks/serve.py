"""How long ``tracetune serve`` takes to be ready, to answer, and to stop (run by hand; see docs/benchmarks.md).

    python benchmarks/serve.py TARGET [--max-tokens N] [--stream]

TARGET: a run folder or model folder. Starts the CLI as a user would (a free
port), waits for its ready line, sends one chat completion, then SIGINT, and
prints the three times and the HTTP status of the reply.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tracetune.engines.serve import free_port

READY = "Ctrl-C stops the server"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="tracetune-serve-bench-")) / "serve.log"
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tracetune.cli.main", "serve", args.target, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while READY not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                sys.exit(f"serve exited:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        ready = time.perf_counter()
        status = _chat(port, args.max_tokens, args.stream)
        answered = time.perf_counter()
        os.kill(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
        stopped = time.perf_counter()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    print(f"ready {ready - start:.1f} s | reply {answered - ready:.2f} s (HTTP {status}) | "
          f"stop {stopped - answered:.2f} s (exit {code})")


def _chat(port: int, max_tokens: int, stream: bool) -> int:
    body = {"model": "student", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": max_tokens,
            "stream": stream}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


if __name__ == "__main__":
    main()
