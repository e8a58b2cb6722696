"""What the model card says beyond the figures: license, tools, shared settings, scores, where to load from.

Each function reads a run folder's artifacts (``RunArtifacts``) or the files
the run wrote (the variants' ``train_config.json`` and ``adapter_config.json``,
``prepare/tools.json``) and returns plain values for the template; nothing is
computed that the card then shows as a figure (values are compared, never
derived). Pure but for reading files; no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Licenses of the base models tracetune knows (a Hub id prefix or a built-in student).
KNOWN_LICENSES = {
    "tiny": "apache-2.0",  # built here from random weights: tracetune's own license
    "smollm2": "apache-2.0",
    "HuggingFaceTB/SmolLM2-": "apache-2.0",
}
#: Names of eval figures that are counts or sizes, not scores: kept out of the card's model-index.
NOT_SCORES = frozenset({"samples", "episodes", "successes", "tool_calls", "parse_failures", "mean_turns", "mean_tokens",
                        "mean_completion_tokens", "mean_prompt_tokens", "stderr", "n", "count"})
#: Train settings that say nothing about how a variant was trained (its name, paths, the student given once).
NOT_SETTINGS = frozenset({"model", "run_name"})
#: PEFT ``adapter_config.json`` fields the card shows for the selected adapter.
ADAPTER_FIELDS = ("r", "lora_alpha", "lora_dropout", "target_modules", "modules_to_save", "use_rslora")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def license_of(manifest: dict[str, Any], run_dir: Path) -> str | None:
    """``[publish] license``, else the base model's: known ones, or the ``license`` its own card declares."""
    config = manifest.get("config", {})
    chosen = (config.get("publish") or {}).get("license")
    if chosen:
        return str(chosen)
    base = str((config.get("student") or {}).get("model") or "")
    for prefix, name in KNOWN_LICENSES.items():
        if base == prefix or (prefix.endswith("-") and base.startswith(prefix)):
            return name
    return _readme_license(_student_folder(run_dir, base))


def _student_folder(run_dir: Path, base: str) -> Path | None:
    pointer = _json(run_dir / "student" / "student.json")
    if isinstance(pointer, dict) and pointer.get("path"):
        return Path(pointer["path"])
    return Path(base).expanduser() if base and Path(base).expanduser().is_dir() else None


def _readme_license(folder: Path | None) -> str | None:
    readme = folder / "README.md" if folder else None
    if readme is None or not readme.is_file():
        return None
    try:
        from huggingface_hub import ModelCard

        value = ModelCard.load(readme).data.to_dict().get("license")
    except Exception:  # a malformed card of someone else's model: no license known
        return None
    return value if isinstance(value, str) and value else None


def scores_only(figures: dict[str, Any]) -> dict[str, float]:
    """The eval figures that are scores (rates and agreements), not counts: what model-index carries."""
    out = {}
    for name, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if name.rsplit(".", 1)[-1] in NOT_SCORES or not 0 <= value <= 1:
            continue
        out[name] = value
    return out


def teacher_tools(run_dir: Path) -> dict[str, list[str]]:
    """{agent: tool names} the teacher's sessions offered (``prepare/tools.json``); empty when absent."""
    data = _json(run_dir / "prepare" / "tools.json") or {}
    out: dict[str, list[str]] = {}
    for agent, entry in (data.get("agents") or {}).items():
        names = [t.get("function", t).get("name") for t in entry.get("tools", []) if isinstance(t, dict)]
        out[agent] = [n for n in names if isinstance(n, str)]
    return {a: names for a, names in out.items() if names}


def variant_configs(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each variant's train config as it trained (``sweep/variants/*/train_config.json``)."""
    out = {}
    for path in sorted(run_dir.glob("sweep/variants/*/train_config.json")):
        data = _json(path)
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            out[path.parent.name] = data["config"]
    return out


def shared_settings(configs: dict[str, dict[str, Any]]) -> tuple[list[tuple[str, Any]], list[str]]:
    """(settings equal in every variant, names of the settings the variants differ in)."""
    if not configs:
        return [], []
    keys = list(dict.fromkeys(k for c in configs.values() for k in c))
    shared, varied = [], []
    for key in keys:
        if key in NOT_SETTINGS:
            continue
        values = [json.dumps(c.get(key), sort_keys=True) for c in configs.values()]
        if len(set(values)) > 1:
            varied.append(key)
            continue
        value = next(iter(configs.values())).get(key)
        if value is None:
            continue
        shared.append((key, ", ".join(map(str, value)) if isinstance(value, list) else value))
    return shared, varied


def adapter_settings(run_dir: Path, variant: str | None) -> list[tuple[str, Any]]:
    """LoRA settings as PEFT saved them for the selected variant (``adapter/adapter_config.json``)."""
    return adapter_settings_in(run_dir / "sweep" / "variants" / variant / "adapter") if variant else []


def adapter_settings_in(adapter: Path) -> list[tuple[str, Any]]:
    """LoRA settings of one adapter folder, as PEFT saved them (``adapter_config.json``)."""
    data = _json(adapter / "adapter_config.json")
    if not isinstance(data, dict):
        return []
    rows = []
    for key in ADAPTER_FIELDS:
        value = data.get(key)
        if value is None or value is False:
            continue
        if isinstance(value, (list, set, tuple)):
            value = ", ".join(sorted(map(str, value)))
        rows.append((key, value))
    return rows


def usage_targets(manifest: dict[str, Any]) -> dict[str, Any]:
    """Where a reader loads the model from: the Hub repos when pushed there, else the run's export folders."""
    config = manifest.get("config", {})
    publish = config.get("publish") or {}
    run = f"{config.get('runs_dir', 'runs')}/{manifest.get('name', 'RUN')}"
    repo = publish.get("repo_id")
    merged_repo = merged_repo_id(publish) if repo and publish.get("push_merged") else None
    has_merged = publish.get("merge", True) is not False
    eval_cfg = config.get("eval") or {}
    return {
        "adapter": repo or f"{run}/publish/adapter",
        "merged": merged_repo or (f"{run}/publish/merged" if has_merged else None),
        "serve": merged_repo or run,
        "max_new_tokens": eval_cfg.get("max_new_tokens"),
    }


def merged_repo_id(publish: dict[str, Any]) -> str | None:
    """The merged model's Hub repo: ``[publish] merged_repo_id``, default ``<repo_id>-merged``."""
    if publish.get("merged_repo_id"):
        return str(publish["merged_repo_id"])
    return default_merged_repo(publish["repo_id"]) if publish.get("repo_id") else None


def default_merged_repo(repo_id: str) -> str:
    """Where the merged model goes when no ``merged_repo_id`` is configured: ``<repo_id>-merged``."""
    return f"{repo_id}-merged"
