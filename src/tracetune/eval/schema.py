"""A small JSON-schema validator for the subset tool definitions use.

Covers ``type`` (one or a list), ``properties``, ``required``,
``additionalProperties`` (bool or schema), ``items``, ``enum``, ``const``,
``minimum``/``maximum``, ``minLength``/``maxLength``, ``minItems``/``maxItems``
and ``anyOf``/``oneOf``/``allOf``. Anything else (``$ref``, formats, patterns)
is accepted without a check, so a schema we do not understand never fails a
call that the real tool would take.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def validate(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Every problem found, as ``"<path>: <what>"`` strings; an empty list means valid."""
    if not isinstance(schema, dict) or not schema:
        return []
    errors = _check_type(value, schema, path)
    if errors:
        return errors
    errors += _check_enum(value, schema, path)
    errors += _check_bounds(value, schema, path)
    if isinstance(value, dict):
        errors += _check_object(value, schema, path)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    errors += _check_combinators(value, schema, path)
    return errors


def _check_type(value: Any, schema: dict, path: str) -> list[str]:
    expected = schema.get("type")
    if expected is None:
        return []
    names = expected if isinstance(expected, list) else [expected]
    known = [n for n in names if n in _TYPES]
    if not known or any(_TYPES[n](value) for n in known):
        return []
    return [f"{path}: expected {' or '.join(known)}, got {_type_name(value)}"]


def _check_enum(value: Any, schema: dict, path: str) -> list[str]:
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} is not one of {schema['enum']!r}"]
    if "const" in schema and value != schema["const"]:
        return [f"{path}: {value!r} is not {schema['const']!r}"]
    return []


def _check_bounds(value: Any, schema: dict, path: str) -> list[str]:
    errors = []
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    sized = {str: ("minLength", "maxLength"), list: ("minItems", "maxItems")}
    for kind, (low, high) in sized.items():
        if isinstance(value, kind):
            if low in schema and len(value) < schema[low]:
                errors.append(f"{path}: shorter than {schema[low]}")
            if high in schema and len(value) > schema[high]:
                errors.append(f"{path}: longer than {schema[high]}")
    return errors


def _check_object(value: dict, schema: dict, path: str) -> list[str]:
    errors = [f"{path}: missing required property {key!r}" for key in schema.get("required", []) if key not in value]
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            errors += validate(item, props[key], f"{path}.{key}")
        elif extra is False:
            errors.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, dict):
            errors += validate(item, extra, f"{path}.{key}")
    return errors


def _check_combinators(value: Any, schema: dict, path: str) -> list[str]:
    errors = []
    for sub in schema.get("allOf", []):
        errors += validate(value, sub, path)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options and not any(not validate(value, sub, path) for sub in options):
            errors.append(f"{path}: matches none of the {key} alternatives")
    return errors


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__
