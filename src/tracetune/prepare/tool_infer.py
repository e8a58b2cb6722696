"""JSON schemas inferred from the arguments a tool was called with, and a conformance check.

``infer_parameters(calls)`` looks at every call's arguments: each property
gets the JSON type(s) its values had (``["integer", "string"]`` when mixed;
integers and floats together are ``number``), arrays get an ``items`` schema
from all their elements, objects are inferred recursively, and a property is
``required`` when it is present in every call (every object, for nested ones).
``conforms(arguments, schema)`` says whether one call fits a declared schema:
required keys present, no undeclared keys, top-level types right.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

_JSON_TYPE = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def json_type(value: Any) -> str:
    """The JSON schema type name of a parsed JSON value (``string`` for anything unknown)."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return _JSON_TYPE.get(type(value), "string")


def _merge_types(types: set[str]) -> str | list[str]:
    if {"integer", "number"} <= types:
        types = types - {"integer"}
    ordered = sorted(types)
    return ordered[0] if len(ordered) == 1 else ordered


def infer_schema(values: list[Any]) -> dict[str, Any]:
    """A JSON schema that every value in ``values`` satisfies."""
    if not values:
        return {}
    schema: dict[str, Any] = {"type": _merge_types({json_type(v) for v in values})}
    objects = [v for v in values if isinstance(v, dict)]
    if objects:
        schema.update(infer_parameters(objects))
        schema["type"] = _merge_types({json_type(v) for v in values})
    elements = [item for v in values if isinstance(v, (list, tuple)) for item in v]
    if elements:
        schema["items"] = infer_schema(elements)
    return schema


def infer_parameters(argument_dicts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The ``parameters`` object schema for a tool called with these argument dicts."""
    calls = list(argument_dicts)
    seen: dict[str, list[Any]] = {}
    for args in calls:
        for key, value in args.items():
            seen.setdefault(key, []).append(value)
    properties = {key: infer_schema(values) for key, values in seen.items()}
    required = [key for key, values in seen.items() if len(values) == len(calls)]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _type_ok(value: Any, declared: Any) -> bool:
    if declared is None:
        return True
    allowed = {declared} if isinstance(declared, str) else set(declared)
    actual = json_type(value)
    return actual in allowed or (actual == "integer" and "number" in allowed)


def conforms(arguments: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether one call's arguments fit ``schema`` (keys and top-level types)."""
    properties = schema.get("properties", {})
    if any(key not in arguments for key in schema.get("required", ())):
        return False
    for key, value in arguments.items():
        if key not in properties:
            return False
        if not _type_ok(value, properties[key].get("type")):
            return False
    return True


def _declared_descriptions(schema: dict[str, Any]) -> dict[tuple[str, Any], str]:
    """(name, type) -> description for every property, at any depth of objects and array items."""
    out: dict[tuple[str, Any], str] = {}
    for key, prop in schema.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        if "description" in prop:
            out.setdefault((key, json.dumps(prop.get("type"))), prop["description"])
        for nested in (prop, prop.get("items") if isinstance(prop.get("items"), dict) else {}):
            if nested.get("properties"):
                for k, v in _declared_descriptions(nested).items():
                    out.setdefault(k, v)
    return out


def borrow_descriptions(inferred: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """``inferred`` with the descriptions of same-named, same-typed declared properties.

    A property moved by a schema change (pi's ``edit`` took ``oldText`` at the
    top level before it took ``edits[].oldText``) keeps its description.
    """
    known = _declared_descriptions(declared)
    props = {}
    for key, prop in inferred.get("properties", {}).items():
        description = known.get((key, json.dumps(prop.get("type"))))
        props[key] = {**prop, "description": description} if description else prop
    return {**inferred, "properties": props}
