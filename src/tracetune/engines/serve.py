"""Serve a local model folder with ``transformers serve`` on 127.0.0.1, for an agent harness to talk to.

``transformers serve`` (extra ``tracetune[serve]``: FastAPI + uvicorn) is an
OpenAI-compatible server: ``/v1/chat/completions`` with streaming, and tool
calls parsed with the tokenizer's ``response_template`` (the tiny student and
the students tracetune builds carry one). It loads a local folder offline.

A server pinned to one model (``force_model``) only answers requests that name
that exact model, and a local folder is named by its path. To give the model a
short name (and keep local paths out of the agent's session files), the server
runs in a scratch folder holding one link, ``NAME -> model folder``, and is
pinned to ``NAME``.

Limits: one process, no batching across requests; CPU serving of anything but
a tiny model is slow. On a GPU, serve with ``vllm serve`` instead (see
docs/pi-harness.md); the harness only needs the base URL and the model name.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tracetune.errors import MissingExtraError, TracetuneError
from tracetune.engines.loading import HUB_KERNELS_ENV
from tracetune.engines.procs import stop_group

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHAT_REQUEST = '"POST /v1/chat/completions HTTP/1.1"'


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def require_serving() -> None:
    """Raise ``MissingExtraError`` unless FastAPI and uvicorn (``transformers[serving]``) are importable."""
    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(module, "serve", "serving a model with `transformers serve`")


def serve_command(name: str, *, host: str, port: int, device: str = "cpu") -> list[str]:
    """The ``transformers serve`` command line, run with this Python."""
    return [
        sys.executable, "-c", "from transformers.cli.transformers import main; main()",
        "serve", name, "--host", host, "--port", str(port), "--device", device, "--log-level", "warning",
    ]


@dataclass
class TransformersServer:
    """``transformers serve`` for one local model folder, as a context manager.

    ``base_url`` (``http://127.0.0.1:PORT/v1``) and ``model_name`` are what an
    OpenAI-compatible client needs. The server's log (uvicorn's access lines
    included) goes to ``log_path`` (default: the scratch folder, deleted on
    exit); ``chat_requests()`` counts the chat completion requests it answered.
    """

    model_dir: Path
    name: str = "student"
    device: str = "cpu"
    host: str = "127.0.0.1"
    port: int = 0
    startup_timeout_s: float = 120.0
    log_path: Path | None = None

    def __post_init__(self) -> None:
        self.model_dir = Path(self.model_dir).expanduser().resolve()
        if not (self.model_dir / "config.json").is_file():
            raise TracetuneError(f"{self.model_dir}: not a model folder (no config.json)",
                                 hint="pass a folder written by save_pretrained (a merged student)")
        if not _NAME.match(self.name):
            raise TracetuneError(f"model name {self.name!r} must be letters, digits, '.', '_' or '-'")
        self._proc: subprocess.Popen | None = None
        self._scratch: Path | None = None

    @property
    def base_url(self) -> str:
        """The server's OpenAI-compatible API root (``http://HOST:PORT/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        """The model name clients ask for."""
        return self.name

    def start(self) -> "TransformersServer":
        """Start ``transformers serve`` offline on a free port and wait until it lists the model."""
        require_serving()
        self.port = self.port or free_port(self.host)
        self._scratch = Path(tempfile.mkdtemp(prefix="tracetune-serve-"))
        (self._scratch / self.name).symlink_to(self.model_dir, target_is_directory=True)
        self.log_path = Path(self.log_path or self._scratch / "server.log")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **HUB_KERNELS_ENV}
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                serve_command(self.name, host=self.host, port=self.port, device=self.device),
                cwd=self._scratch, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_ready()
        except BaseException:
            self.cleanup()
            raise
        return self

    def wait_ready(self) -> None:
        """Poll ``/v1/models`` until it lists the model; fail early if the process dies."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise TracetuneError(f"`transformers serve` exited before it was ready:\n{self.log_tail()}",
                                     hint="pip install 'tracetune[serve]'; check the model folder loads")
            if self.name in _get(f"{self.base_url}/models"):
                return
            time.sleep(0.5)
        raise TracetuneError(f"`transformers serve` not ready after {self.startup_timeout_s:.0f} s:\n{self.log_tail()}",
                             hint="raise startup_timeout_s for a large model")

    def chat_requests(self) -> int:
        """How many ``/v1/chat/completions`` requests the server has logged."""
        if not self.log_path or not self.log_path.exists():
            return 0
        return self.log_path.read_text("utf-8", errors="replace").count(_CHAT_REQUEST)

    def alive(self) -> bool:
        """Whether the server process is running."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server log, or ``(no log)``."""
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            stop_group(proc, grace_s=10, kill_wait_s=10)

    def cleanup(self) -> None:
        """``stop``, then delete the scratch folder (a ``log_path`` given elsewhere is kept)."""
        self.stop()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> "TransformersServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError):
        return ""
