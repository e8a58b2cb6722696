"""Definitions of the pi-compatible tools (names and parameters as pi's own) and a small argument check.

Parameter names and meanings follow the pi coding agent's built-in tools
(``read``, ``bash``, ``edit``, ``write``, ``ls``, ``find``, ``grep``), so a
student trained on pi sessions sees the interface it learned. The descriptions
are tracetune's own wording.
"""

from __future__ import annotations

from typing import Any

from tracetune.conversation.types import ToolSpec
from tracetune.conversation.wire import tool_from_wire


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


def _s(desc: str) -> dict[str, Any]:
    return {"type": "string", "description": desc}


def _n(desc: str) -> dict[str, Any]:
    return {"type": "number", "description": desc}


def _b(desc: str) -> dict[str, Any]:
    return {"type": "boolean", "description": desc}


_EDIT_ITEM = _obj({"oldText": _s("Exact text to replace; must occur once in the file"), "newText": _s("Text to put in its place")}, ["oldText", "newText"])

TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec("read", "Read a text file. Long files are cut at 2000 lines or 50KB; continue with offset.",
             _obj({"path": _s("File to read, relative to the working directory or absolute"),
                   "offset": _n("First line to show (1-based)"), "limit": _n("How many lines to show")}, ["path"])),
    ToolSpec("bash", "Run a bash command in the working directory and return its combined stdout and stderr.",
             _obj({"command": _s("The command to run"), "timeout": _n("Seconds before the command is stopped")}, ["command"])),
    ToolSpec("edit", "Replace exact, unique pieces of text in one file.",
             _obj({"path": _s("File to edit"), "edits": {"type": "array", "items": _EDIT_ITEM,
                                                           "description": "Replacements, each matched against the original file"}},
                  ["path", "edits"])),
    ToolSpec("write", "Write a file, creating it and its parent directories, or replacing it.",
             _obj({"path": _s("File to write"), "content": _s("The whole new content")}, ["path", "content"])),
    ToolSpec("ls", "List a directory, sorted, directories marked with a trailing '/'.",
             _obj({"path": _s("Directory to list (default: the working directory)"), "limit": _n("Most entries to return (default 500)")}, [])),
    ToolSpec("find", "Find files whose path matches a glob pattern; paths are relative to the search directory.",
             _obj({"pattern": _s("Glob pattern, e.g. '*.py' or 'src/**/*.py'"), "path": _s("Directory to search (default: the working directory)"),
                   "limit": _n("Most results to return (default 1000)")}, ["pattern"])),
    ToolSpec("grep", "Search file contents for a pattern; prints path:line: text for each match.",
             _obj({"pattern": _s("Regular expression (or literal text with literal=true)"),
                   "path": _s("Directory or file to search (default: the working directory)"),
                   "glob": _s("Only files matching this glob, e.g. '*.py'"), "ignoreCase": _b("Case-insensitive search"),
                   "literal": _b("Treat the pattern as literal text"), "context": _n("Lines of context around each match"),
                   "limit": _n("Most matches to return (default 100)")}, ["pattern"])),
)

TOOL_NAMES = tuple(t.name for t in TOOL_SPECS)
_BY_NAME = {t.name: t for t in TOOL_SPECS}
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,), "array": (list,), "object": (dict,),
}


def spec_for(name: str) -> ToolSpec | None:
    """The definition of the pi tool called ``name``, or None when there is none."""
    return _BY_NAME.get(name)


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    expected = _TYPES.get(schema.get("type", ""), (object,))
    if isinstance(value, bool) and schema.get("type") in ("number", "integer"):
        return False
    return isinstance(value, expected)


def argument_problem(spec: ToolSpec, arguments: dict[str, Any]) -> str | None:
    """Why ``arguments`` do not fit ``spec`` (missing, unknown or mistyped key), or None."""
    schema = spec.parameters
    props = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in arguments:
            return f"missing required argument '{key}'"
    for key, value in arguments.items():
        if key not in props:
            return f"unknown argument '{key}'"
        if not _type_ok(value, props[key]):
            return f"argument '{key}' should be a {props[key].get('type')}"
        items = props[key].get("items")
        if items and isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    return f"{key}[{i}] should be an object"
                sub = argument_problem(ToolSpec(spec.name, parameters=items), item)
                if sub:
                    return f"{key}[{i}]: {sub}"
    return None


def normalize_arguments(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Accept the argument shapes pi itself accepts: ``edits`` as a JSON string, or top-level oldText/newText."""
    if name != "edit":
        return arguments
    args = dict(arguments)
    if isinstance(args.get("edits"), str):
        import json

        try:
            parsed = json.loads(args["edits"])
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            args["edits"] = parsed
    if isinstance(args.get("oldText"), str) and isinstance(args.get("newText"), str):
        edits = list(args.get("edits") or []) if isinstance(args.get("edits"), list) else []
        edits.append({"oldText": args.pop("oldText"), "newText": args.pop("newText")})
        args["edits"] = edits
    return args


def offered_tools(tools_file: str | None = None) -> tuple[ToolSpec, ...]:
    """The tool definitions shown to the model, so they match what it was trained with.

    From ``tools_file`` (prepare's ``OUT/tools.json``: the pi agent's tools, else the
    first agent's) when given; otherwise prepare's built-in pi schemas; otherwise
    ``TOOL_SPECS``. Only tools the loop can execute are offered; their parameters
    are pi's either way, so execution and validation use ``TOOL_SPECS``.
    """
    if tools_file:
        specs = _from_tools_file(tools_file)
    else:
        from tracetune.prepare.tools import load_builtin

        specs = tuple(load_builtin("pi").tools.values())
    chosen = tuple(s for s in specs if s.name in TOOL_NAMES)
    return chosen or TOOL_SPECS


def _from_tools_file(path: str) -> tuple[ToolSpec, ...]:
    import json
    from pathlib import Path

    from tracetune.errors import TracetuneError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        agents = data["agents"]
        tools = (agents.get("pi") or next(iter(agents.values())))["tools"]
        return tuple(tool_from_wire(t) for t in tools)
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:  # WireError is a ValueError
        raise TracetuneError(f"cannot read tool definitions from {path}: {exc}", hint="pass prepare's OUT/tools.json") from exc
