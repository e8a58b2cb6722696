"""The HTML data report of ``prepare`` (``report.html``): the viewer of the masks.

Filled from ``prepare_stats.json`` and the rows just written: length
histograms (inline SVG), the chat template audit, kept/dropped turns by reason, the tool mix, and a few
rendered examples with the supervised tokens highlighted (from the supervised
character spans the mask was built from). Self-contained: no scripts, no
network.

The redaction section comes from ``redaction_report.json`` (passed in, or
read from beside the report): what was replaced by kind and by the field it
was found in, home paths and user names. Counts only: that file never holds a
value, and nothing else of it is shown.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from tracetune.prepare.dataset import Rows
from tracetune.prepare.summary import PrepareSummary

MAX_EXAMPLE_CHARS = 12000


def histogram(values: list[int], bins: int = 24, width: int = 560, height: int = 140) -> dict[str, Any]:
    """Bars of a histogram, ready for SVG (x, width, height, label)."""
    if not values:
        return {"bars": [], "width": width, "height": height, "lo": 0, "hi": 0, "count": 0}
    lo, hi = min(values), max(values)
    step = max(1, -(-(hi - lo + 1) // bins))
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, (v - lo) // step)] += 1
    top = max(counts)
    bar_w = width / bins
    bars = [
        {
            "x": round(i * bar_w, 1),
            "w": round(bar_w - 2, 1),
            "h": round((height - 20) * c / top, 1) if top else 0,
            "label": f"{lo + i * step}-{lo + (i + 1) * step - 1} tokens: {c}",
        }
        for i, c in enumerate(counts)
    ]
    return {"bars": bars, "width": width, "height": height, "lo": lo, "hi": hi, "count": len(values)}


def highlighted(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, supervised) segments, clipped for display."""
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for a, b in sorted(spans):
        if a > pos:
            pieces.append((text[pos:a], False))
        pieces.append((text[a:b], True))
        pos = b
    if pos < len(text):
        pieces.append((text[pos:], False))
    out, used = [], 0
    for piece, sup in pieces:
        room = MAX_EXAMPLE_CHARS - used
        if room <= 0:
            out.append((f"\n[... {len(text) - used} more characters not shown ...]", False))
            break
        if not sup and len(piece) > 1500:
            piece = _shorten(piece, 700)
        out.append((piece[:room], sup))
        used += min(len(piece), room)
    return out


def _shorten(text: str, keep: int) -> str:
    """Head and tail of ``text``, cut at line breaks where there are some."""
    head_end = text.rfind("\n", 0, keep) + 1 or keep
    tail_start = text.find("\n", len(text) - keep) + 1 or len(text) - keep
    return text[:head_end] + f"[... {tail_start - head_end} characters of context not shown ...]\n" + text[tail_start:]


def _examples(rows: Rows, tokenizer, count: int) -> list[dict[str, Any]]:
    cols = rows.columns
    n = len(rows)
    if not n or count <= 0:
        return []
    order = sorted(range(n), key=lambda i: cols["num_tokens"][i])
    picks = sorted({order[int(k * (n - 1) / max(1, count - 1))] for k in range(min(count, n))})
    out = []
    for i in picks:
        ids, mask = cols["input_ids"][i].tolist(), list(cols["assistant_masks"][i])
        segments, text, spans, pos = [], "", [], 0
        for tok, m in _runs(ids, mask):
            piece = tokenizer.decode(tok)
            if m:
                spans.append((pos, pos + len(piece)))
            text += piece
            pos += len(piece)
        segments = highlighted(text, spans)
        out.append(
            {
                "episode_id": cols["episode_id"][i],
                "window": cols["window"][i],
                "tokens": cols["num_tokens"][i],
                "supervised": cols["num_supervised"][i],
                "segments": segments,
            }
        )
    return out


def _runs(ids: list[int], mask: list[int]):
    start = 0
    for j in range(1, len(ids) + 1):
        if j == len(ids) or mask[j] != mask[start]:
            yield ids[start:j], mask[start]
            start = j


def redaction_view(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The redaction report's counts as table rows (kinds, fields); None without a report."""
    if not report:
        return None
    kinds = []
    for group in ("secrets", "pii"):
        part = report.get(group) or {}
        for kind, count in (part.get("by_kind") or {}).items():
            distinct = (part.get("distinct_by_kind") or {}).get(kind, 0)
            kinds.append({"kind": kind, "group": "personal data" if group == "pii" else "secret",
                          "count": count, "distinct": distinct})
    kinds.sort(key=lambda k: (-k["count"], k["kind"]))
    fields = [
        {"field": name, "total": sum(counts.values()),
         "kinds": ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
        for name, counts in (report.get("where") or {}).items()
    ]
    top = max((k["count"] for k in kinds), default=0) or 1
    for k in kinds:
        k["pct"] = round(100 * k["count"] / top, 1)
    return {
        "sessions": report.get("sessions", 0),
        "sessions_changed": report.get("sessions_changed", 0),
        "secrets": (report.get("secrets") or {}).get("total", 0),
        "secrets_distinct": (report.get("secrets") or {}).get("distinct_total", 0),
        "pii": (report.get("pii") or {}).get("total", 0),
        "pii_on": (report.get("options") or {}).get("pii"),
        "paths": report.get("paths") or {},
        "kinds": kinds,
        "fields": fields,
    }


def write_report(
    path: Path,
    stats: PrepareSummary,
    rows: dict[str, Rows],
    tokenizer,
    examples: int,
    audit: dict[str, Any] | None = None,
    redaction: dict[str, Any] | None = None,
) -> None:
    """Render ``report.html``; ``redaction`` defaults to the ``redaction_report.json`` beside ``path``."""
    if redaction is None and (path.parent / "redaction_report.json").is_file():
        redaction = json.loads((path.parent / "redaction_report.json").read_text("utf-8"))
    env = Environment(autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    source = resources.files("tracetune.prepare").joinpath("templates", "report.html.jinja").read_text("utf-8")
    template = env.from_string(source)
    dropped = stats.turns.dropped_by_reason
    kept = stats.turns.supervised
    html = template.render(
        stats=stats,
        stats_json=json.dumps(stats.model_dump(mode="json"), indent=2, ensure_ascii=False),
        hist_train=histogram(rows["train"].columns["num_tokens"]),
        hist_eval=histogram(rows["eval"].columns["num_tokens"]),
        turn_bars=_bars({"supervised": kept, **dropped}),
        tool_bars=_bars(stats.tool_calls_supervised),
        examples=_examples(rows["train"], tokenizer, examples) + _examples(rows["eval"], tokenizer, 1),
        audit=audit,
        redaction=redaction_view(redaction),
    )
    path.write_text(html, encoding="utf-8")


def _bars(counts: dict[str, int]) -> list[dict[str, Any]]:
    top = max(counts.values(), default=0) or 1
    return [{"label": k, "value": v, "pct": round(100 * v / top, 1)} for k, v in counts.items()]
