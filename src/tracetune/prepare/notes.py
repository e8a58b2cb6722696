"""What a user should know after ``prepare``, in plain lines: files skipped, turns dropped and the fix.

``prepare_notes(stats)`` reads only the ``PrepareSummary``'s figures
(``read.file_errors``, the per-session ``sessions`` list with ``agent``,
``targets`` and ``dropped_by_reason``, ``prefix_tokens``, ``max_length`` and the
stage's ``warnings``) and returns one line per finding, without markup, so
``tracetune prepare`` and the run's prepare stage print the same thing.
"""

from __future__ import annotations

from collections import Counter

from tracetune.prepare.summary import FileError, PrepareSummary, SessionSummary

LOSSY = "lossy_messages_source"  # the reader warning of a messages-only dataset row (readers.datasets_source)
MAX_FILES = 5  # skipped files named one per line; the rest counted

FIXES = {
    "not_prefix_stable": "the chat template renders these turns differently once later turns follow, so their "
                         "tokens cannot be masked; use the shipped template (--template tool-aware, "
                         "prepare.chat_template = 'tool-aware')",
    "template_error": "the chat template refused these turns; use the shipped template (--template tool-aware, "
                      "prepare.chat_template = 'tool-aware')",
    "renders_empty": "the chat template renders these turns as nothing; use the shipped template "
                     "(--template tool-aware, prepare.chat_template = 'tool-aware')",
}


def prepare_notes(stats: PrepareSummary) -> list[str]:
    """Skipped files, then dropped turns by agent and reason with the fix, then the stage's other warnings."""
    lines = _skipped_files(stats.read.file_errors)
    lossy = stats.read.warnings_by_kind.get(LOSSY, 0)
    if lossy:
        lines.append(f"{lossy:,} sessions were read from a dataset's `messages` column only (lossy: that conversion "
                     "already dropped what the raw trace held, such as branches, compactions and exact tool results); "
                     "give the dataset's `trace` column, or the session files, to read them exactly")
    max_length = stats.max_length
    explained: set[str] = set()  # agents whose too_long line already names their prefix
    for agent, targets, reason, count, prefix in _drops_by_agent(stats.sessions):
        head = f"{agent}: {count:,} of {targets:,} turns"
        if reason == "too_long":
            lines.append(_too_long(head, prefix, max_length))
            if prefix * 4 > max_length:
                explained.add(agent)
        else:
            lines.append(f"{head} dropped ({reason}): {FIXES.get(reason, 'see report.html for the turns')}")
    lines += [w for w in stats.warnings if not any(w.startswith(f"{a}: ") for a in explained)]
    return lines


def _skipped_files(errors: list[FileError]) -> list[str]:
    lines = []
    for e in errors[:MAX_FILES]:
        path, why = e.path, e.error.removesuffix("; skipped")
        if "\n  hint: " in why:  # an unreadable file's error carries its hint on a second line
            why, hint = why.split("\n  hint: ", 1)
            why = f"{why} ({hint})"
        lines.append(f"skipped {why if why.startswith(path) else f'{path}: {why}'}")
    if len(errors) > MAX_FILES:
        lines.append(f"skipped {len(errors) - MAX_FILES} more files (all in prepare_stats.json, read.file_errors)")
    return lines


def _drops_by_agent(sessions: list[SessionSummary]) -> list[tuple[str, int, str, int, int]]:
    """(agent, its target turns, reason, turns dropped for it, the largest prefix among sessions that dropped them)."""
    targets: Counter = Counter()
    dropped: dict[str, Counter] = {}
    prefix: dict[tuple[str, str], int] = {}
    for s in sessions:
        agent = s.agent or "unknown"
        targets[agent] += s.targets
        for reason, n in s.dropped_by_reason.items():
            dropped.setdefault(agent, Counter())[reason] += n
            key = (agent, reason)
            prefix[key] = max(prefix.get(key, 0), s.prefix_tokens)
    return [(agent, targets[agent], reason, n, prefix[(agent, reason)])
            for agent in sorted(dropped) for reason, n in sorted(dropped[agent].items())]


def _too_long(head: str, prefix: int, max_length: int) -> str:
    at = f"{head} too long at {max_length:,} tokens"
    if prefix >= max_length:
        return (f"{at}: the system prompt and tool definitions alone take {prefix:,} tokens; raise max_length well "
                f"above {prefix:,}, or give shorter tool definitions (tools_file) or a shorter system prompt")
    if prefix * 4 > max_length:
        return (f"{at}: the system prompt and tool definitions take up to {prefix:,} of them (in the sessions that "
                f"dropped turns), leaving {max_length - prefix:,} for a turn and its context; raise max_length, give "
                "shorter tool definitions (tools_file), or lower clip_tool_result_chars")
    return f"{at}: a turn with its tool result does not fit; raise max_length, or lower clip_tool_result_chars"
