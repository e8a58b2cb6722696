"""Optional coding benchmarks (HumanEval, MBPP) through Inspect AI and ``inspect_evals``.

Needs the extra ``eval`` (``pip install 'tracetune[eval]'``) and the
benchmark data (downloaded by ``inspect_evals`` from the Hub on first use).
When either is missing the benchmark is recorded as ``skipped`` with the
reason, and the rest of the eval goes on. The generated code runs in the
sandbox the task asks for (``inspect_sandbox``, Docker by default, as
``inspect_evals`` ships it).

Models are handed to Inspect the way Inspect names them: a local model as
``hf/<folder>`` (a LoRA adapter is merged into a folder first), a served one
as ``openai-api/tracetune/<name>`` against the server's base URL.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from tracetune.engines.loading import load_kwargs

BENCHMARKS = {"humaneval": "inspect_evals/humaneval", "mbpp": "inspect_evals/mbpp"}


@dataclass(frozen=True)
class InspectModel:
    role: str
    name: str  # Inspect's model string
    base_url: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchmarkResult:
    benchmark: str
    role: str
    status: str  # "ok", "skipped" or "error"
    metrics: dict[str, float] = field(default_factory=dict)
    samples: int | None = None
    reason: str | None = None
    log: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """This result as a JSON-ready dict."""
        return asdict(self)


def availability() -> str | None:
    """Why Inspect benchmarks cannot run here, or None when they can."""
    import importlib.util

    for module, package in (("inspect_ai", "inspect-ai"), ("inspect_evals", "inspect-evals")):
        if importlib.util.find_spec(module) is None:
            return f"the package '{package}' is not installed (pip install 'tracetune[eval]')"
    return None


def fold_log(benchmark: str, role: str, log: Any) -> BenchmarkResult:
    """One Inspect ``EvalLog`` to a ``BenchmarkResult`` (first metric value of every scorer)."""
    location = str(getattr(log, "location", "") or "") or None
    if getattr(log, "status", None) != "success":
        error = getattr(log, "error", None)
        reason = str(getattr(error, "message", error) or f"status {getattr(log, 'status', 'unknown')}").splitlines()[0][:300]
        return BenchmarkResult(benchmark, role, "error", reason=reason, log=location)
    results = getattr(log, "results", None)
    metrics: dict[str, float] = {}
    for score in getattr(results, "scores", None) or []:
        for name, metric in (getattr(score, "metrics", None) or {}).items():
            key = name if len(results.scores) == 1 else f"{score.name}.{name}"
            metrics[key] = float(getattr(metric, "value", metric))
    samples = getattr(results, "completed_samples", None) or getattr(results, "total_samples", None)
    return BenchmarkResult(benchmark, role, "ok", metrics=metrics, samples=samples, log=location)


def run_benchmarks(
    benchmarks: list[str],
    models: list[InspectModel],
    log_dir: Path,
    *,
    limit: int | None = None,
    sandbox: str | None = None,
    seed: int = 0,
    eval_fn: Callable[..., list[Any]] | None = None,
) -> list[BenchmarkResult]:
    """Run every benchmark against every model; never raises for a missing extra, data or engine error."""
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    results = [BenchmarkResult(b, m.role, "skipped", reason=f"unknown benchmark (known: {', '.join(BENCHMARKS)})")
               for b in unknown for m in models]
    wanted = [b for b in benchmarks if b in BENCHMARKS]
    if not wanted:
        return results
    if eval_fn is None:
        missing = availability()
        if missing:
            return results + [BenchmarkResult(b, m.role, "skipped", reason=missing) for b in wanted for m in models]
        from inspect_ai import eval as eval_fn
    for model in models:
        for bench in wanted:
            results.append(_run_one(eval_fn, bench, model, log_dir, limit, sandbox, seed))
    return results


def _run_one(eval_fn: Callable[..., list[Any]], bench: str, model: InspectModel, log_dir: Path,
             limit: int | None, sandbox: str | None, seed: int) -> BenchmarkResult:
    if model.base_url:
        os.environ.setdefault("TRACETUNE_API_KEY", "unused")
    try:
        logs = eval_fn(
            BENCHMARKS[bench], model=model.name, model_base_url=model.base_url, model_args=model.args,
            task_args={"sandbox": sandbox} if sandbox else {}, limit=limit, seed=seed,
            log_dir=str(log_dir / model.role), display="none",
        )
    except Exception as exc:  # noqa: BLE001 - a third-party engine: record why (often: no network for the data)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        return BenchmarkResult(bench, model.role, "skipped", reason=f"{type(exc).__name__}: {first}")
    if not logs:
        return BenchmarkResult(bench, model.role, "error", reason="Inspect returned no log")
    return fold_log(bench, model.role, logs[0])


def inspect_models(config: Any, backends: Any, merged_dir: Path) -> list[InspectModel]:
    """Inspect model strings for the configured roles (a LoRA adapter is merged for a local run)."""
    models = []
    for role in config.models:
        url = backends.served_url()
        if url is not None:
            name = backends.served_name(role)
            models.append(InspectModel(role, f"openai-api/tracetune/{name}", base_url=url))
        elif role == "base":
            models.append(InspectModel(role, f"hf/{backends.base_model}", args={"device": config.backend.device}))
        else:
            merged = merge_adapter(backends.base_model, backends.adapter_dir, merged_dir, backends.tokenizer_path)
            models.append(InspectModel(role, f"hf/{merged}", args={"device": config.backend.device}))
    return models


def merge_adapter(base_model: str, adapter_dir: Path, out_dir: Path, tokenizer_path: Path | None = None) -> Path:
    """Base + LoRA merged into a plain folder that any engine (Inspect's ``hf/``) can load."""
    if (out_dir / "config.json").is_file():
        return out_dir
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tracetune.eval.backends.transformers_backend import load_tokenizer

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model, **load_kwargs()), str(adapter_dir))
    model.merge_and_unload().save_pretrained(out_dir)
    adapter_tokenizer = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else None
    load_tokenizer(tokenizer_path or adapter_tokenizer or base_model).save_pretrained(out_dir)
    return out_dir
