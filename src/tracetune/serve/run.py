"""``serve()``: resolve, check, start the engine, configure pi, report readiness, wait for Ctrl-C.

The CLI only renders what this module returns or reports through ``on_ready``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tracetune.serve.engines import Endpoint, endpoint_of, local_model, run_vllm, serve_transformers, vllm_argv
from tracetune.serve.options import ServeOptions
from tracetune.serve.pi_config import PiConfigResult, add_pi_provider, check_pi_models
from tracetune.serve.resolve import ServeTarget


@dataclass(frozen=True)
class PiRequest:
    """``--pi``: which provider name to write, and where (None: pi's own location)."""

    provider: str = "tracetune"
    path: Path | None = None


@dataclass(frozen=True)
class Ready:
    target: ServeTarget
    engine: str
    endpoint: Endpoint
    pi: PiConfigResult | None

    @property
    def curl(self) -> str:
        """A ``curl`` command that sends the served model one chat request."""
        return curl_command(self.endpoint)


def for_engine(target: ServeTarget, opts: ServeOptions) -> ServeTarget:
    """The target as the engine will load it: for transformers, a local model folder (Hub ids downloaded)."""
    return local_model(target) if opts.engine == "transformers" else target


def check_target(target: ServeTarget, opts: ServeOptions) -> list[str]:
    """Warnings about what the served model will not do (empty: nothing to say)."""
    info, warnings = target.template, []
    if info.has_chat_template is False:
        warnings.append("it has no chat template: /v1/chat/completions cannot render a conversation for it "
                        "(serve a tracetune student or merged run, which carry one)")
    if opts.engine == "transformers" and info.has_response_template is False:
        warnings.append("its tokenizer has no response_template: `transformers serve` will return tool calls as "
                        "plain text, not parsed tool_calls, so an agent sees no tool calls (train with a "
                        "tool-aware template: `--chat-template tool-aware` in prepare)")
    if opts.engine == "vllm" and info.writes_tool_call_tags is False:
        warnings.append(f"its chat template writes no <tool_call> tags, which vLLM's `{opts.tool_parser}` "
                        "parser expects: tool calls will not be parsed")
    return warnings


def curl_command(endpoint: Endpoint) -> str:
    """A ``curl`` command that asks ``endpoint`` for a short chat completion of ``Hello!``."""
    body = {"model": endpoint.model_name, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64}
    return (f"curl -s {endpoint.base_url}/chat/completions -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(body))}")


def configure_pi(endpoint: Endpoint, target: ServeTarget, pi: PiRequest | None) -> PiConfigResult | None:
    """Add the endpoint to pi's ``models.json`` when ``--pi`` was given; None otherwise."""
    if pi is None:
        return None
    return add_pi_provider(endpoint.base_url, endpoint.model_name, provider=pi.provider, path=pi.path,
                           context_window=target.context_window)


def print_only(target: ServeTarget, opts: ServeOptions, pi: PiRequest | None) -> tuple[list[str], PiConfigResult | None]:
    """The ``vllm serve`` argv, and pi configured for the address it will listen on."""
    argv = vllm_argv(target, opts)
    return argv, configure_pi(endpoint_of(opts), target, pi)


def serve(target: ServeTarget, opts: ServeOptions, on_ready: Callable[[Ready], None],
          pi: PiRequest | None = None) -> None:
    """Serve ``target`` in the foreground; ``on_ready`` is called once it answers. Returns on Ctrl-C."""
    def ready(endpoint: Endpoint) -> None:
        on_ready(Ready(target, opts.engine, endpoint, configure_pi(endpoint, target, pi)))

    if pi is not None:
        check_pi_models(pi.path)
    try:
        if opts.engine == "vllm":
            run_vllm(vllm_argv(target, opts), opts, ready)
        else:
            serve_transformers(target, opts, ready)
    except KeyboardInterrupt:
        return
