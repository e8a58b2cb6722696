"""The eval stage: fidelity always, Inspect benchmarks and the live loop when asked; one results file.

``evaluate(config, prepared_dir, base_model, adapter_dir, out_dir)`` writes
``out_dir/results.json`` and ``out_dir/report.html`` and returns an
``EvalResult``. Base and tuned are scored on the same samples, one model
loaded at a time.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tracetune.errors import TracetuneError
from tracetune.eval.backends import BackendSet
from tracetune.eval.config import EvalConfig
from tracetune.eval.fidelity import HEAD_USER_CHARS, WINDOW_MARKER, FidelityRun, Progress, run_fidelity
from tracetune.eval.report import RESULTS_VERSION, fidelity_section, headline, render_html, write_results


@dataclass
class EvalResult:
    out_dir: Path
    results_path: Path
    report_path: Path
    headline: dict[str, dict[str, Any]]  # role -> flat figures (see report.headline)
    fidelity: FidelityRun | None = None
    notes: list[str] = field(default_factory=list)  # what was skipped and why


def evaluate(
    config: EvalConfig,
    prepared_dir: str | Path,
    base_model: str,
    adapter_dir: str | Path | None,
    out_dir: str | Path,
    *,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> EvalResult:
    """Score the configured models (base, tuned) on the prepared eval split; write ``results.json`` and ``report.html``."""
    say = log or (lambda _msg: None)
    prepared, out = Path(prepared_dir), Path(out_dir)
    adapter = Path(adapter_dir) if adapter_dir else None
    config = _models_available(config, adapter, say)
    config = with_prompt_cap(config, prepared)
    _harness_available(config)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_path, chat_template = student_rendering(prepared, adapter)
    settings = _settings(config, prepared, base_model, adapter, tokenizer_path, chat_template is not None)
    notes: list[str] = []
    with BackendSet(config.backend, base_model, adapter, tokenizer_path=tokenizer_path, chat_template=chat_template,
                    seed=config.seed, log_dir=out) as backends:
        ids = {role: backends.model_id(role) for role in config.models}
        say(f"fidelity: sampling up to {config.max_samples} turns from {prepared / 'eval_episodes.jsonl'}")
        run = run_fidelity(config, prepared / "eval_episodes.jsonl", backends.open, ids, progress)
        fidelity = fidelity_section(run, config.seed)
        live = _run_live(config, backends, out, notes, say)
        inspect = _run_inspect(config, backends, out, notes, say)
    results = {
        "version": RESULTS_VERSION,
        "settings": settings,
        "models": headline(fidelity, live, inspect),
        "fidelity": fidelity,
        "inspect": inspect,
        "live": live,
        "notes": notes,
    }
    results_path, report_path = out / "results.json", out / "report.html"
    write_results(results_path, results)
    report_path.write_text(render_html(results, config.examples), encoding="utf-8")
    return EvalResult(out, results_path, report_path, results["models"], run, notes)


def with_prompt_cap(config: EvalConfig, prepared: Path) -> EvalConfig:
    """``max_prompt_tokens``, ``head_user_chars`` and ``window_marker`` filled from the settings the data was prepared with, when unset."""
    info_path = prepared / "student.json"
    try:
        info = json.loads(info_path.read_text("utf-8"))
    except (OSError, ValueError):
        info = {}
    update: dict[str, int | bool] = {}
    if config.head_user_chars is None:
        chars = info.get("head_user_chars")  # absent from data prepared before it was recorded: prepare's default then
        update["head_user_chars"] = chars if isinstance(chars, int) else HEAD_USER_CHARS
    if config.window_marker is None:
        marker = info.get("window_marker")
        update["window_marker"] = marker if isinstance(marker, bool) else WINDOW_MARKER
    if config.max_prompt_tokens is None:
        cap = info.get("max_length")
        if not isinstance(cap, int):
            raise TracetuneError(
                f"cannot tell the prepared max_length from {info_path}",
                hint="set eval.max_prompt_tokens (--max-prompt-tokens), or prepare the data again",
            )
        update["max_prompt_tokens"] = cap
    return config.model_copy(update=update)


def _models_available(config: EvalConfig, adapter: Path | None, say: Callable[[str], None]) -> EvalConfig:
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise TracetuneError(f"{adapter} is not a LoRA adapter (no adapter_config.json)", hint="pass the adapter/ folder of a train run")
    if adapter is None and "tuned" in config.models and config.backend.kind != "openai":
        say("no adapter given: scoring the base model only")
        return config.model_copy(update={"models": [m for m in config.models if m != "tuned"]})
    return config


def _harness_available(config: EvalConfig) -> None:
    """The pi harness's own needs (node, pi, the serve extra, the sandbox), checked before any model loads."""
    if config.live is not None and getattr(config.live, "harness", "builtin") == "pi":
        from tracetune.eval.live.pi_harness import check_pi_harness, pi_sandbox

        check_pi_harness(config.live, needs_serving=config.backend.kind == "transformers")
        if config.backend.kind == "openai" and config.backend.base_url:
            pi_sandbox(config.live, config.backend.base_url)


def student_rendering(prepared: Path, adapter: Path | None) -> tuple[Path | None, str | None]:
    """Which tokenizer renders prompts, and the chat template prepare rendered the data with (if it overrode one).

    The adapter folder's tokenizer when training saved one there (it is the one
    the student learned with), else the base model's; the template named in
    ``prepared/student.json`` wins, so base and tuned see exactly what training saw.
    """
    tokenizer = adapter if adapter is not None and (adapter / "tokenizer_config.json").is_file() else None
    info_path = prepared / "student.json"
    template = None
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text("utf-8"))
        except ValueError:
            info = {}
        template = _template_text(info.get("chat_template"))
    return tokenizer, template


def _template_text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if "{%" in value or "{{" in value:
        return value
    from importlib import resources

    shipped = resources.files("tracetune.prepare").joinpath("chat_templates", f"{value}.jinja")
    if shipped.is_file():
        return shipped.read_text("utf-8")
    path = Path(value).expanduser()
    return path.read_text("utf-8") if path.is_file() else None


def _settings(config: EvalConfig, prepared: Path, base_model: str, adapter: Path | None,
              tokenizer: Path | None, template_override: bool) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("tracetune", "torch", "transformers", "peft", "inspect-ai"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return {
        "config": config.model_dump(mode="json"),
        "prepared_dir": str(prepared),
        "base_model": base_model,
        "adapter_dir": str(adapter) if adapter else None,
        "tokenizer": str(tokenizer) if tokenizer else base_model,
        "chat_template_from_prepare": template_override,
        "versions": versions,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def _run_live(config: EvalConfig, backends: BackendSet, out: Path, notes: list[str], say) -> dict[str, Any]:
    if config.live is None:
        return {}
    if importlib.util.find_spec("tracetune.eval.live") is None:
        notes.append("live loop skipped: tracetune.eval.live is not installed")
        return {}
    if config.live.harness == "pi":
        return _run_live_pi(config, backends, out, say)
    from tracetune.eval.live import run_live

    results = {}
    for role in config.models:
        say(f"live loop: {role}")
        backend = backends.open(role)
        try:
            results[role] = run_live(config.live, backend, out_dir=out / "live").to_dict()
        finally:
            backend.close()
    return results


def _run_live_pi(config: EvalConfig, backends: BackendSet, out: Path, say) -> dict[str, Any]:
    """The live loop run by the real pi CLI, one model side served at a time."""
    import tempfile

    from tracetune.eval.live.pi_endpoints import pi_endpoint
    from tracetune.eval.live.pi_harness import run_live_pi

    results = {}
    with tempfile.TemporaryDirectory(prefix="tracetune-pi-serve-") as tmp:
        for role in config.models:
            scratch = Path(tmp) / role
            scratch.mkdir()
            say(f"live loop ({role}): pi harness")
            with pi_endpoint(role, backends, scratch, say) as endpoint:
                results[role] = run_live_pi(config.live, endpoint, role, out_dir=out / "live").to_dict()
    return results


def _run_inspect(config: EvalConfig, backends: BackendSet, out: Path, notes: list[str], say) -> list[dict[str, Any]]:
    if not config.inspect_benchmarks:
        return []
    from tracetune.eval.inspect_bench import InspectModel, availability, inspect_models, run_benchmarks

    missing = availability()
    if missing:
        notes.append(f"Inspect benchmarks skipped: {missing}")
        models = [InspectModel(role, role) for role in config.models]
    else:
        say(f"Inspect benchmarks: {', '.join(config.inspect_benchmarks)}")
        models = inspect_models(config, backends, out / "merged_tuned")
    results = run_benchmarks(config.inspect_benchmarks, models, out / "inspect", limit=config.inspect_limit,
                             sandbox=config.inspect_sandbox, seed=config.seed)
    return [r.to_dict() for r in results]
