"""The two engines ``tracetune serve`` drives: ``transformers serve`` (CPU) and ``vllm serve`` (GPU).

Neither is ours: ``transformers serve`` runs through ``TransformersServer``
(the eval harness's; extra ``tracetune[serve]``), and ``vllm serve`` is a
command line built here and run from vLLM's own environment (it cannot share
tracetune's: other torch and transformers pins, CUDA). Both are OpenAI
compatible; both stay in the foreground until Ctrl-C (or SIGTERM), then stop
their whole process group.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from tracetune.errors import TracetuneError
from tracetune.serve.options import ServeOptions
from tracetune.serve.resolve import ServeTarget, model_target

VLLM_HINT = ("vLLM runs in its own environment on a GPU machine (it pins its own torch and transformers): "
             "install it there and run the command above, or pass --vllm-executable PATH/TO/bin/vllm")


@dataclass(frozen=True)
class Endpoint:
    """What an OpenAI-compatible client needs."""

    base_url: str  # http://HOST:PORT/v1
    model_name: str


def vllm_argv(target: ServeTarget, opts: ServeOptions) -> list[str]:
    """The exact ``vllm serve`` command line: a model folder or id as is, an adapter as a LoRA module on its base.

    The client asks for ``opts.name`` either way; with an adapter the bare
    base answers as ``NAME-base``.
    """
    from tracetune.engines.vllm import VLLMServeSpec, serve_command

    adapter = target.adapter.resolve() if target.adapter is not None else None
    template = target.template.template_file
    spec = VLLMServeSpec(
        base_model=target.model,
        served_name=f"{opts.name}-base" if adapter is not None else opts.name,
        adapter_dir=adapter,
        lora_name=opts.name,
        chat_template=template.resolve() if template is not None else None,
        host=opts.host,
        port=opts.port,
        tool_parser=opts.tool_parser,
        extra_args=list(opts.vllm_args),
        executable=opts.vllm_executable,
    )
    return serve_command(spec)


def endpoint_of(opts: ServeOptions, port: int | None = None) -> Endpoint:
    """Where a client on this machine reaches the server (``0.0.0.0`` and ``::`` become ``127.0.0.1``)."""
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "::", "") else opts.host
    return Endpoint(f"http://{host}:{port or opts.port}/v1", opts.name)


def run_vllm(argv: list[str], opts: ServeOptions, on_ready: Callable[[Endpoint], None]) -> None:
    """Run ``vllm serve`` in the foreground (its log on this terminal) until Ctrl-C."""
    executable = shutil.which(argv[0])
    if executable is None:
        raise TracetuneError(f"`{argv[0]}` is not on PATH, so vLLM cannot be started here. The command:\n  "
                             f"{shlex.join(argv)}", hint=VLLM_HINT)
    check_port_free(opts.host, opts.port)
    endpoint = endpoint_of(opts)
    with interruptible():
        proc = subprocess.Popen([executable, *argv[1:]], stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_http(proc, endpoint.base_url + "/models", opts.startup_timeout_s)
            on_ready(endpoint)
            code = proc.wait()
            raise TracetuneError(f"vllm serve exited with code {code}", hint="see its log above")
        finally:
            _stop(proc)


def serve_transformers(target: ServeTarget, opts: ServeOptions, on_ready: Callable[[Endpoint], None]) -> None:
    """``transformers serve`` on a local model folder, in the foreground until Ctrl-C."""
    from tracetune.engines.serve import TransformersServer, require_serving

    require_serving()
    target = local_model(target)
    if opts.port:
        check_port_free(opts.host, opts.port)
    server = TransformersServer(Path(target.model), name=opts.name, device=opts.device, host=opts.host,
                                port=opts.port, startup_timeout_s=opts.startup_timeout_s)
    with interruptible(), server:
        on_ready(endpoint_of(opts, server.port))
        while server.alive():
            time.sleep(0.5)
        raise TracetuneError(f"`transformers serve` stopped on its own:\n{server.log_tail()}")


def local_model(target: ServeTarget) -> ServeTarget:
    """A model folder ``transformers serve`` can load: Hub ids are downloaded (cached); adapters are refused."""
    if target.kind == "adapter":
        raise TracetuneError(
            f"{target.origin}: `transformers serve` cannot load a LoRA adapter on its base model",
            hint=f"serve it with vLLM (--engine vllm), or merge it first: python -c \"from tracetune.engines.merge "
            f"import merge_adapter; merge_adapter('{target.adapter}', 'merged')\" and serve ./merged",
        )
    if target.kind == "model":
        return target
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(target.model)
    except Exception as exc:  # the hub client raises many kinds (offline, 404, auth)
        raise TracetuneError(f"{target.model} is not a local folder and could not be downloaded from the Hub: {exc}",
                             hint="pass a local model or run folder, or check the id and your network") from exc
    return model_target(Path(folder), f"{target.origin} ({folder})")


def check_port_free(host: str, port: int) -> None:
    """Raise unless a server could listen on ``host:port`` now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise TracetuneError(f"cannot listen on {host}:{port}: {exc.strerror}",
                                 hint="pass another --port (or --port 0 for a free one)") from exc


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM raise ``KeyboardInterrupt`` here (even where the shell started us with SIGINT ignored)."""
    def _raise(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, _raise) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _wait_http(proc: subprocess.Popen, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TracetuneError(f"the server exited with code {proc.returncode} before it was ready",
                                 hint="see its log above")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise TracetuneError(f"the server did not answer {url} within {timeout_s:.0f} s",
                         hint="raise --startup-timeout (loading a large model takes minutes)")


def _stop(proc: subprocess.Popen) -> None:
    from tracetune.engines.procs import stop_group

    if proc.poll() is None:
        stop_group(proc, grace_s=30, kill_wait_s=10)
