"""Settings of the eval stage (one pydantic model, composed into the run config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

try:
    from tracetune.eval.live.config import LiveConfig
except ModuleNotFoundError as _exc:  # the live loop is optional; only its own absence is tolerated
    if not (_exc.name or "").startswith("tracetune.eval.live"):
        raise

    class LiveConfig(BaseModel):  # type: ignore[no-redef]
        """Placeholder until ``tracetune.eval.live`` is installed."""

        model_config = ConfigDict(extra="allow")


BackendKind = Literal["transformers", "openai", "vllm"]
ModelRole = Literal["base", "tuned"]


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: BackendKind = Field("transformers", description="Generation engine: transformers, openai (any compatible endpoint) or vllm.")
    batch_size: int = Field(4, ge=1, description="Requests generated together (transformers) or in flight at once (HTTP).")
    batch_tokens: int | None = Field(None, ge=1, description="transformers: padded prompt tokens generated together at most; None: 16,384 on CPU (memory), 262,144 on a GPU.")
    device: str = Field("auto", description="transformers: 'cpu', 'cuda', 'cuda:1' or 'auto' (GPU when there is one).")
    dtype: str = Field("auto", description="transformers: 'auto', 'float32', 'bfloat16' or 'float16'.")
    stop_loops: bool = Field(True, description="transformers: stop a sample that repeats one span 3 times over 32+ tokens; it counts as unfinished, as at the token cap, without keeping its batch waiting for the cap.")
    base_url: str | None = Field(None, description="openai: the server root, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: environment variable holding the API key (may be unset).")
    base_model_name: str | None = Field(None, description="openai/vllm: model name of the base model on the server (default: the base model given).")
    tuned_model_name: str | None = Field(None, description="openai: model name of the tuned model on the server; vllm: the LoRA module name (default 'tuned').")
    request_timeout_s: float = Field(300.0, gt=0, description="openai/vllm: seconds to wait for one completion.")
    vllm_executable: str = Field("vllm", description="vllm: the `vllm` command of the environment vLLM is installed in.")
    vllm_host: str = Field("127.0.0.1", description="vllm: host the server listens on.")
    vllm_port: int = Field(8000, ge=1, le=65535, description="vllm: port the server listens on.")
    vllm_extra_args: list[str] = Field(default_factory=list, description="vllm: more `vllm serve` arguments, e.g. ['--max-model-len', '8192'].")
    startup_timeout_s: float = Field(900.0, gt=0, description="vllm: seconds to wait for the server to answer /v1/models.")


class EvalConfig(BaseModel):
    """What `tracetune eval` measures and how (fidelity always; Inspect and live when asked)."""

    model_config = ConfigDict(extra="forbid")

    backend: BackendConfig = Field(default_factory=BackendConfig)
    models: list[ModelRole] = Field(default_factory=lambda: ["base", "tuned"], description="Which models to score, always on the same samples.")
    max_samples: int = Field(200, ge=1, description="Cap on sampled assistant turns (seeded sample of the eval split).")
    max_new_tokens: int = Field(256, ge=1, description="Cap on generated tokens per sample.")
    max_prompt_tokens: int | None = Field(None, ge=1, description="Longest context in tokens; None: the max_length the data was prepared with (a held-out context is never fed whole: 177k-token contexts took 21 GB).")
    head_user_chars: int | None = Field(None, ge=0, description="A windowed context repeats the task's first user message clipped to this many characters; None: the prepare.head_user_chars the data was prepared with, as its training windows did.")
    window_marker: bool | None = Field(None, description="A windowed context notes how many messages it leaves out; None: the prepare.window_marker the data was prepared with, as its training windows did.")
    long_context: Literal["skip", "window"] = Field("window", description="Longer contexts: 'window' them like prepare's training windows (head + marker + recent turns; counted and flagged), or 'skip' them (counted).")
    temperature: float = Field(0.0, ge=0.0, description="0 is greedy decoding.")
    seed: int = Field(0, description="Seeds sample choice, sampling and bootstrap intervals.")
    examples: int = Field(6, ge=0, description="Side-by-side examples shown in the HTML report.")
    inspect_benchmarks: list[str] = Field(default_factory=list, description="Optional Inspect AI tasks, e.g. ['humaneval', 'mbpp'] (extra 'eval').")
    inspect_limit: int | None = Field(None, ge=1, description="Cap on samples per Inspect benchmark.")
    inspect_sandbox: str | None = Field(None, description="Sandbox for benchmark code (None: the task's default, Docker for inspect_evals; 'local' runs it unisolated).")
    live: LiveConfig | None = Field(None, description="Live agent loop settings; None skips the live loop.")
