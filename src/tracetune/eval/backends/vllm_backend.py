"""vLLM as its own server process, spoken to through the OpenAI-compatible backend.

vLLM cannot share tracetune's environment (it pins its own torch and
transformers and needs CUDA), so it is used the way its users run it::

    vllm serve BASE --served-model-name BASE_NAME --enable-lora \\
        --lora-modules tuned=ADAPTER --enable-auto-tool-choice --tool-call-parser hermes

from the environment vLLM is installed in (``backend.vllm_executable``).
Base and tuned are both answered by the one server: the base under its
served name, the tuned model under the LoRA module name. The server's output
goes to a log file; when it dies or does not answer ``/v1/models`` in time,
the error quotes the end of that log.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from tracetune.errors import TracetuneError
from tracetune.eval.backends.base import Generation, GenerationRequest
from tracetune.eval.backends.openai_backend import OpenAIBackend
from tracetune.engines.procs import stop_group
from tracetune.engines.vllm import VLLMServeSpec, serve_command

def find_executable(executable: str) -> str:
    """The full path of ``executable`` on PATH; ``TracetuneError`` when it is not installed."""
    found = shutil.which(executable)
    if found is None:
        raise TracetuneError(
            f"the vLLM backend needs the `{executable}` command, which is not on PATH",
            hint="install vLLM in its own environment on a GPU machine and set backend.vllm_executable "
            "to that environment's bin/vllm (vLLM cannot share tracetune's environment)",
        )
    return found


class VLLMServer:
    """One ``vllm serve`` process: started, waited for, stopped."""

    def __init__(self, spec: VLLMServeSpec, log_path: Path, startup_timeout_s: float = 900.0, poll_s: float = 1.0):
        self.spec = spec
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.poll_s = poll_s
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """The server's OpenAI-compatible API root (``http://host:port/v1``)."""
        return f"http://{self.spec.host}:{self.spec.port}/v1"

    def start(self) -> "VLLMServer":
        """Start ``vllm serve`` and wait until it answers; the process is stopped if it fails."""
        cmd = serve_command(self.spec)
        cmd[0] = find_executable(cmd[0])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        """Poll ``/v1/models`` until it answers 200; fail early if the process exits."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise TracetuneError(
                    f"vllm serve exited with code {self.process.returncode} before it was ready:\n{self.log_tail()}",
                    hint=f"see {self.log_path}",
                )
            if _answers(self.base_url + "/models"):
                return
            time.sleep(self.poll_s)
        raise TracetuneError(
            f"vllm serve did not answer {self.base_url}/models within {self.startup_timeout_s:.0f} s:\n{self.log_tail()}",
            hint="raise backend.startup_timeout_s (loading a large model takes minutes) or see the log",
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the server log, or ``(no log)``."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 30 s) if it is still running."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            stop_group(proc, grace_s=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class VLLMBackend:
    """One model name (base or LoRA module) on a ``VLLMServer``; closes the server if it owns it."""

    def __init__(self, server: VLLMServer, model: str, *, name: str, owns_server: bool = False,
                 timeout_s: float = 300.0, concurrency: int = 8):
        self.server = server
        self.name = name
        self.owns_server = owns_server
        self._client = OpenAIBackend(server.base_url, model, api_key="", name=name, timeout_s=timeout_s, concurrency=concurrency)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One ``Generation`` per request, from the model this backend names on the server."""
        return self._client.generate(requests)

    def close(self) -> None:
        """Stop the server when this backend owns it."""
        if self.owns_server:
            self.server.stop()
