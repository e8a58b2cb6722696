"""The model card of a run, written only from the run folder's own artifacts.

Every figure in the card is read from a file of the run (``prepare/``,
``sweep/``, ``eval/``, ``manifest.json``) and printed as it is there (floats
to four significant digits); nothing is computed for the card, so every
number can be traced back (``tests/test_card.py`` checks it). A missing
artifact shows as "not available", never as a guess.

The result is a ``huggingface_hub.ModelCard``: YAML metadata (base model,
license, datasets, tags, ``library_name: peft``, a ``model-index`` with the
tuned model's eval *scores*, never counts) and a Markdown body from
``templates/model_card.md.jinja`` (usage, data, the settings every variant
shared, the selected adapter's LoRA settings, selection, eval, the teacher's
tools). ``merged_card`` turns it into the merged model's card
(``library_name: transformers``, ``base_model_relation: merge``);
``write_train_card`` writes a card for a ``tracetune train`` output folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracetune.card import facts
from tracetune.util.files import atomic_write_text

TEMPLATE = Path(__file__).with_name("templates") / "model_card.md.jinja"
TAGS = ["tracetune", "peft", "lora", "sft", "trl", "agent", "tool-use"]
NOT_FIGURES = {"version", "seconds", "student"}  # format versions, timings, local paths
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class RunArtifacts:
    """The JSON artifacts of one run folder, each None when absent."""

    run_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    prepare_stats: dict[str, Any] | None = None
    redaction: dict[str, Any] | None = None
    student: dict[str, Any] | None = None
    rule: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_results: dict[str, Any] | None = None
    tools: dict[str, Any] | None = None

    def files(self) -> list[Path]:
        """Every artifact file the card may draw on (what the traceability test searches)."""
        found = [p for p in ARTIFACT_FILES.values() if (self.run_dir / p).is_file()]
        for pattern in (VARIANT_METRICS, VARIANT_CONFIGS, VARIANT_ADAPTERS):
            found += [p.relative_to(self.run_dir) for p in sorted(self.run_dir.glob(pattern))]
        return [self.run_dir / p for p in found]


VARIANT_METRICS = "sweep/variants/*/metrics.json"
VARIANT_CONFIGS = "sweep/variants/*/train_config.json"
VARIANT_ADAPTERS = "sweep/variants/*/adapter/adapter_config.json"
VARIANT_FIGURES = ("global_step", "metrics", "data")  # not paths or the log history
ARTIFACT_FILES = {
    "manifest": Path("manifest.json"),
    "prepare_stats": Path("prepare/prepare_stats.json"),
    "redaction": Path("prepare/redaction_report.json"),
    "student": Path("prepare/student.json"),
    "rule": Path("sweep/selection_rule.json"),
    "selection": Path("sweep/selection.json"),
    "eval_results": Path("eval/results.json"),
    "tools": Path("prepare/tools.json"),
}


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_artifacts(run_dir: Path) -> RunArtifacts:
    """The JSON artifacts of ``run_dir`` (manifest, stats, selection, eval results, variant metrics)."""
    art = RunArtifacts(run_dir=run_dir)
    for attr, rel in ARTIFACT_FILES.items():
        setattr(art, attr, _read(run_dir / rel))
    art.manifest = art.manifest or {}
    for metrics in sorted(run_dir.glob(VARIANT_METRICS)):
        art.variants[metrics.parent.name] = _read(metrics)
    return art


def fmt(value: Any) -> str:
    """How a figure is printed: ints as they are, floats to four significant digits (one decimal from 1000 up)."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}".removesuffix(".0")
    return str(value)


def scalar_rows(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Flatten nested dicts to (dotted key, scalar) rows; lists of scalars are joined."""
    if not isinstance(data, dict):
        return []
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += scalar_rows(value, name + ".")
        elif isinstance(value, list) and value and all(not isinstance(v, (dict, list)) for v in value):
            rows.append((name, ", ".join(fmt(v) for v in value)))
        elif not isinstance(value, list):
            rows.append((name, value))
    return rows


def model_scores(results: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{'base': {metric: value}, 'tuned': {...}} from eval results, wherever the roles sit."""
    if not results:
        return {}
    holders = [results.get("models"), results.get("results"), results]
    for holder in holders:
        if isinstance(holder, dict) and any(isinstance(holder.get(r), dict) for r in ("base", "tuned")):
            return {r: dict(scalar_rows(holder[r])) for r in ("base", "tuned") if isinstance(holder.get(r), dict)}
    return {}


def _figure_rows(data: dict[str, Any] | None) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in scalar_rows(data) if k.split(".")[0] not in NOT_FIGURES]


def _figures(metrics: dict[str, Any]) -> dict[str, Any]:
    kept = {k: metrics[k] for k in VARIANT_FIGURES if k in metrics}
    return kept or metrics


SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def base_model_of(art: RunArtifacts) -> str:
    """The student's base model as the run config names it, or ``unknown``."""
    student = art.manifest.get("config", {}).get("student", {})
    return str(student.get("model") or "unknown")


def hub_base_model(base: str) -> str | None:
    """The base model's Hub id for the card metadata (built-in SmolLM2: its release), else None."""
    if base == "smollm2":
        return SMOLLM2_HUB_ID
    return base if _HUB_ID.match(base) and not Path(base).exists() else None


def hub_datasets(art: RunArtifacts) -> list[str]:
    """The Hub datasets the traces came from (recorded by the prepare stage, pinned to commits)."""
    sources = art.manifest.get("stages", {}).get("prepare", {}).get("extra", {}).get("hub_sources", [])
    return sorted({s["repo_id"] for s in sources if isinstance(s, dict) and s.get("repo_id")})


def card_metadata(art: RunArtifacts, scores: dict[str, dict[str, Any]]) -> Any:
    """The card's ``ModelCardData`` header: base model, license, datasets, tags and the tuned model's scores."""
    from huggingface_hub import EvalResult, ModelCardData

    base = base_model_of(art)
    tuned = facts.scores_only(scores.get("tuned", {}))
    results = [
        EvalResult(
            task_type="text-generation",
            task_name="next-action fidelity and live agent loop",
            dataset_type="tracetune-held-out-sessions",
            dataset_name="held-out teacher sessions",
            metric_type=name,
            metric_name=name,
            metric_value=value,
        )
        for name, value in tuned.items()
    ]
    return ModelCardData(
        base_model=hub_base_model(base),
        base_model_relation="adapter" if hub_base_model(base) else None,
        license=facts.license_of(art.manifest, art.run_dir),
        datasets=hub_datasets(art) or None,
        library_name="peft",
        tags=TAGS,
        model_name=art.manifest.get("name") if results else None,
        eval_results=results or None,
        pipeline_tag="text-generation",
    )


def render_body(art: RunArtifacts, scores: dict[str, dict[str, Any]]) -> str:
    """The card's Markdown body, rendered from the run's artifacts and ``scores``."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["fmt"] = fmt
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    metric_names = list(dict.fromkeys([*scores.get("base", {}), *scores.get("tuned", {})]))
    configs = facts.variant_configs(art.run_dir)
    shared, varied = facts.shared_settings(configs)
    if not configs:  # no variant recorded its config: the run config's [train], as configured
        train = art.manifest.get("config", {}).get("train", {})
        shared = [(k, v) for k, v in scalar_rows(train) if v is not None and k not in facts.NOT_SETTINGS]
    selected = (art.selection or {}).get("winner")
    return template.render(
        name=art.manifest.get("name", art.run_dir.name),
        base_model=base_model_of(art),
        license=facts.license_of(art.manifest, art.run_dir),
        usage=facts.usage_targets(art.manifest),
        data_rows=_figure_rows(art.prepare_stats),
        redaction_rows=_figure_rows(art.redaction),
        train_rows=shared,
        train_source="the variants' `train_config.json`" if configs else "`manifest.json`, the run config",
        varied=varied,
        adapter_rows=facts.adapter_settings(art.run_dir, selected),
        tools=facts.teacher_tools(art.run_dir),
        rule_rows=scalar_rows(art.rule),
        selected=selected,
        variants={name: scalar_rows(_figures(m)) for name, m in art.variants.items()},
        metric_names=metric_names,
        scores=scores,
        live_sandbox=live_sandbox_modes(art.eval_results),
        libraries=sorted(art.manifest.get("libraries", {}).items()),
    )


def live_sandbox_modes(results: dict[str, Any] | None) -> list[str]:
    """The sandbox modes the live loop ran in (``eval/results.json``), as recorded."""
    live = (results or {}).get("live") or {}
    modes = [r.get("sandbox", {}).get("mode") for r in live.values() if isinstance(r, dict)]
    return sorted({m for m in modes if isinstance(m, str)})


def build_model_card(run_dir: Path) -> Any:
    """A ``huggingface_hub.ModelCard`` for the run in ``run_dir``."""
    from huggingface_hub import ModelCard

    art = load_artifacts(run_dir)
    scores = model_scores(art.eval_results)
    data = card_metadata(art, scores)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{render_body(art, scores)}")


def write_model_card(run_dir: Path, out_path: Path) -> Path:
    """Write the card as ``out_path`` (write then rename)."""
    text = str(build_model_card(run_dir))
    atomic_write_text(out_path, text)
    return out_path


MERGED_NOTE = (
    "> This is the merged model: the LoRA adapter below merged into its base model's weights, saved with\n"
    "> `save_pretrained`. It loads with `AutoModelForCausalLM.from_pretrained` alone (no PEFT); the rest of\n"
    "> this card describes the adapter's training.{adapter}\n"
)


def merged_card(adapter_card: str | Path, adapter_repo: str | None = None) -> Any:
    """The merged model's card, from the adapter's: ``library_name: transformers``, ``base_model_relation: merge``."""
    from huggingface_hub import ModelCard

    card = ModelCard(Path(adapter_card).read_text(encoding="utf-8") if isinstance(adapter_card, Path) else adapter_card)
    card.data.library_name = "transformers"
    card.data.tags = [t for t in (card.data.tags or []) if t not in ("peft", "lora")] + ["merge"]
    if card.data.base_model:
        card.data.base_model_relation = "merge"
    where = f" The adapter alone: [`{adapter_repo}`](https://huggingface.co/{adapter_repo})." if adapter_repo else ""
    note = MERGED_NOTE.format(adapter=where)
    body = card.text.lstrip("\n")
    if body.startswith("# "):
        title, _, rest = body.partition("\n")
        text = f"{title}\n\n{note}\n{rest.lstrip()}"
    else:
        text = f"{note}\n{body}"
    return ModelCard(f"---\n{card.data.to_yaml()}\n---\n\n{text}")


def write_train_card(out_dir: Path, adapter_dir: Path | None = None) -> Path:
    """Write the card of a ``tracetune train`` output folder into its adapter (replacing PEFT's placeholder).

    Drawn from ``train_config.json`` and ``metrics.json`` only (figures as stored).
    """
    import jinja2
    from huggingface_hub import ModelCard, ModelCardData

    out_dir = Path(out_dir)
    adapter = Path(adapter_dir) if adapter_dir else out_dir / "adapter"
    config = (_read(out_dir / "train_config.json") or {}).get("config", {})
    metrics = _read(out_dir / "metrics.json") or {}
    base = str(config.get("model") or "unknown")
    license_name = facts.license_of({"config": {"student": {"model": base}}}, out_dir)
    data = ModelCardData(base_model=hub_base_model(base), license=license_name, library_name="peft", tags=TAGS,
                         pipeline_tag="text-generation")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["fmt"] = fmt
    body = env.from_string(TRAIN_TEMPLATE.read_text(encoding="utf-8")).render(
        name=config.get("run_name") or out_dir.name,
        base_model=base,
        license=license_name,
        adapter=str(adapter),
        settings=[(k, v) for k, v in scalar_rows(config) if v is not None and k not in facts.NOT_SETTINGS],
        lora=facts.adapter_settings_in(adapter),
        figures=scalar_rows(_figures({k: metrics[k] for k in ("global_step", "metrics", "data") if k in metrics})),
    )
    path = adapter / "README.md"
    atomic_write_text(path, str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")))
    return path


TRAIN_TEMPLATE = TEMPLATE.with_name("train_card.md.jinja")
