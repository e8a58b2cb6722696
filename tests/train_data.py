"""Small prepared datasets for training tests, made by ``tracetune.prepare`` from the real pi trace.

Kept short for speed: per-turn examples of at most ``max_length`` tokens,
two history messages, tool results clipped, and tool definitions reduced to
their names (the tiny student's tokenizer spends ~700 tokens on pi's full
schemas). The trace is one session, so prepare's family split leaves eval
empty; every fifth example is moved to eval instead (distinct target turns of
the same session: enough to see held-out loss move, not a fair benchmark).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
PI_TRACE = SHARED / "pi" / "before-compaction.jsonl"
PI_TOOLS = ("read", "bash", "edit", "write")


def _short_tools(path: Path) -> Path:
    spec = {"type": "object", "properties": {}}
    tools = [{"type": "function", "function": {"name": n, "description": "", "parameters": spec}} for n in PI_TOOLS]
    path.write_text(json.dumps({"tools": tools}))
    return path


def prepared_pi_dataset(student: Path, out: Path, *, max_length: int = 512, strategy: str = "per-turn") -> Path:
    """A prepared dataset of the pi trace for ``student`` in ``out``, with a held-out eval split."""
    from datasets import DatasetDict

    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.stage import prepare
    from tracetune.train.data import load_prepared

    out.mkdir(parents=True, exist_ok=True)
    config = PrepareConfig(
        student=str(student), max_length=max_length, strategy=strategy, per_turn_history=2, per_turn_fit=True,
        head_user_chars=200, clip_tool_result_chars=200, tools_file=str(_short_tools(out / "tools.json")),
    )
    prepared = out / "prepared"
    prepare(config, [PI_TRACE], prepared)
    train = load_prepared(prepared)["train"]
    held = [i for i in range(len(train)) if i % 5 == 4]
    kept = [i for i in range(len(train)) if i % 5 != 4]
    DatasetDict({"train": train.select(kept), "eval": train.select(held)}).save_to_disk(str(out / "dataset"))
    for record in prepared.glob("*.json"):
        shutil.copy(record, out / record.name)
    return out


_CACHE: dict[tuple[str, int, str], Path] = {}


def shared_pi_dataset(student: Path, tmp_path_factory, *, max_length: int = 512, strategy: str = "per-turn") -> Path:
    """``prepared_pi_dataset``, built once per test session (read-only for the tests that share it)."""
    key = (str(student), max_length, strategy)
    if key not in _CACHE:
        _CACHE[key] = prepared_pi_dataset(student, tmp_path_factory.mktemp("pi_data"), max_length=max_length, strategy=strategy)
    return _CACHE[key]
