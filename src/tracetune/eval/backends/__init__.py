"""Generation backends and the factory that builds them from an ``EvalConfig``'s backend settings.

``BackendSet`` hands out one backend per model role (``base``, ``tuned``), one
at a time, so a local model is loaded only while it is scored; for vLLM the
two roles share one server, stopped by ``BackendSet.close``. ``make_backend``
builds a single standalone backend (e.g. for the live loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tracetune.errors import TracetuneError
from tracetune.eval.backends.base import Backend, Generation, GenerationRequest

if TYPE_CHECKING:  # the config imports the live loop's config, which may import backends: keep this one-way
    from tracetune.eval.config import BackendConfig, ModelRole

__all__ = ["Backend", "BackendSet", "Generation", "GenerationRequest", "make_backend"]


class BackendSet:
    """Backends for the base and tuned model described by one backend config."""

    def __init__(
        self,
        config: BackendConfig,
        base_model: str,
        adapter_dir: Path | None = None,
        *,
        tokenizer_path: Path | None = None,
        chat_template: str | None = None,
        seed: int = 0,
        log_dir: Path | None = None,
    ):
        self.config = config
        self.chat_template = chat_template
        self.base_model = base_model
        self.adapter_dir = adapter_dir
        self.tokenizer_path = tokenizer_path
        self.seed = seed
        self.log_dir = log_dir or Path(".")
        self._server = None

    def model_id(self, role: ModelRole) -> str:
        """How the model is named in results: a path, a served name, or a hub id."""
        if role == "base":
            return self.config.base_model_name or self.base_model
        return self.config.tuned_model_name or str(self.adapter_dir or "tuned")

    def open(self, role: ModelRole) -> Backend:
        """A backend for the base or tuned model, of the kind the config names."""
        if role == "tuned" and self.adapter_dir is None and self.config.kind != "openai":
            raise TracetuneError("the tuned model was asked for, but no adapter was given", hint="pass --adapter DIR or evaluate only the base model")
        kind = self.config.kind
        if kind == "transformers":
            from tracetune.eval.backends.transformers_backend import TransformersBackend

            adapter = self.adapter_dir if role == "tuned" else None
            return TransformersBackend(self.base_model, adapter, tokenizer_path=self.tokenizer_path,
                                       chat_template=self.chat_template, name=role,
                                       device=self.config.device, dtype=self.config.dtype, batch_size=self.config.batch_size,
                                       batch_tokens=self.config.batch_tokens, stop_loops=self.config.stop_loops)
        if kind == "openai":
            return self._openai(role)
        return self._vllm(role)

    def served_url(self) -> str | None:
        """The OpenAI-compatible root the models answer at (starting vLLM if needed); None for local models."""
        if self.config.kind == "openai":
            return self.config.base_url
        if self.config.kind == "vllm":
            return self._vllm_server().base_url
        return None

    def served_name(self, role: ModelRole) -> str:
        """The model name requests for ``role`` carry when sent to a server."""
        if self.config.kind == "vllm":
            spec = self._vllm_server().spec
            return spec.served_name if role == "base" else spec.lora_name
        return (self.config.base_model_name or self.base_model) if role == "base" else (self.config.tuned_model_name or "")

    def _openai(self, role: ModelRole):
        from tracetune.eval.backends.openai_backend import OpenAIBackend

        if not self.config.base_url:
            raise TracetuneError("the openai backend needs backend.base_url", hint="e.g. base_url = \"http://127.0.0.1:8000/v1\"")
        model = self.config.base_model_name or self.base_model
        if role == "tuned":
            model = self.config.tuned_model_name or ""
            if not model:
                raise TracetuneError("the openai backend needs backend.tuned_model_name to score the tuned model",
                                     hint="the name the server serves the tuned model (or its LoRA module) under")
        return OpenAIBackend(self.config.base_url, model, api_key_env=self.config.api_key_env, name=role,
                             timeout_s=self.config.request_timeout_s, concurrency=self.config.batch_size)

    def _vllm(self, role: ModelRole):
        from tracetune.eval.backends.vllm_backend import VLLMBackend

        server = self._vllm_server()
        model = server.spec.served_name if role == "base" else server.spec.lora_name
        return VLLMBackend(server, model, name=role, timeout_s=self.config.request_timeout_s,
                           concurrency=self.config.batch_size)

    def _vllm_server(self):
        from tracetune.eval.backends.vllm_backend import VLLMServer, VLLMServeSpec

        if self._server is None:
            c = self.config
            template = None
            if self.chat_template:
                template = self.log_dir / "chat_template.jinja"
                template.parent.mkdir(parents=True, exist_ok=True)
                template.write_text(self.chat_template, encoding="utf-8")
            spec = VLLMServeSpec(
                base_model=self.base_model, served_name=c.base_model_name or self.base_model, adapter_dir=self.adapter_dir,
                lora_name=c.tuned_model_name or "tuned", tokenizer=str(self.tokenizer_path) if self.tokenizer_path else None,
                chat_template=template,
                host=c.vllm_host, port=c.vllm_port, seed=self.seed, extra_args=list(c.vllm_extra_args), executable=c.vllm_executable,
            )
            self._server = VLLMServer(spec, self.log_dir / "vllm_server.log", startup_timeout_s=c.startup_timeout_s).start()
        return self._server

    def close(self) -> None:
        """Stop the vLLM server this set started, if any."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "BackendSet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_backend(config: BackendConfig, role: ModelRole, base_model: str, adapter_dir: Path | None = None,
                 *, tokenizer_path: Path | None = None, seed: int = 0, log_dir: Path | None = None) -> Backend:
    """One backend that owns whatever it started (a vLLM server stops when the backend closes)."""
    backends = BackendSet(config, base_model, adapter_dir, tokenizer_path=tokenizer_path, seed=seed, log_dir=log_dir)
    backend = backends.open(role)
    if config.kind == "vllm":
        backend.owns_server = True  # type: ignore[attr-defined]
    return backend
