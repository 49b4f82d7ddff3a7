"""Which JSON Schema keywords a `grammar` may use: those the grammar engine enforces while
generating, and none other.

`checked_schema` parses a grammar's schema (an object, or its JSON text) and walks every
subschema. A keyword that constrains and is enforced (`ENFORCED`), or that only annotates
(`ANNOTATIONS`), is accepted; any other is refused with a `ValidationError` (422) that names it
and where it stands in the schema, as a JSON pointer: `'multipleOf' at
'#/properties/age'`. A keyword is never dropped in silence, so every output that ends by itself
validates against the schema the client sent.

Pure: no engine, no torch; the engine (`generation.grammar`) compiles what this accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NoReturn

from tgi_server.errors import ValidationError

__all__ = ["ANNOTATIONS", "ENFORCED", "FORMATS", "TYPES", "checked_schema", "closed_objects"]

TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})

ENFORCED = frozenset(
    {
        "type",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
"""Keywords that constrain the output, each enforced while generating."""

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$comment",
    }
)
"""Keywords that describe and constrain nothing: accepted, and the output ignores them."""

FORMATS = frozenset({"date-time", "date", "time", "email", "uuid"})
"""The string `format`s enforced; any other is refused, as an unknown keyword is."""

_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SUBSCHEMAS = ("additionalProperties", "items")
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def checked_schema(value: Any) -> dict[str, Any]:
    """The JSON Schema object `value` stands for (parsed if it is JSON text; any object when
    empty), once every keyword in it is known to be enforced; else a ValidationError."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"grammar is not valid: {exc}") from exc
    if value is None or value == {}:
        return {"type": "object"}
    if not isinstance(value, dict):
        raise ValidationError("grammar is not valid: a JSON Schema must be an object")
    _check(value, "#", root=value)
    return value


def closed_objects(schema: Any) -> Any:
    """`schema` (checked) where every object that lists `properties` and says nothing of
    `additionalProperties` allows no others, as TGI's outlines grammars do: a subset of what
    the schema allows, so outputs still validate, and they hold only the properties named."""
    if isinstance(schema, list):
        return [closed_objects(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in _SCHEMA_MAPS:
            closed[keyword] = {name: closed_objects(sub) for name, sub in value.items()}
        elif keyword in (*_SUBSCHEMAS, "anyOf"):
            closed[keyword] = closed_objects(value)
        else:
            closed[keyword] = value
    if "properties" in closed:
        closed.setdefault("additionalProperties", False)
    return closed


def _check(schema: Any, path: str, *, root: Mapping[str, Any]) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        _refuse(f"a schema must be an object or a boolean, at '{path}'")
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword not in ENFORCED:
            _refuse(f"JSON Schema keyword '{keyword}' at '{path}' is not supported")
        _check_keyword(keyword, value, path, root=root)


def _check_keyword(keyword: str, value: Any, path: str, *, root: Mapping[str, Any]) -> None:
    """`value` is a valid value of `keyword` (in the schema at `path`); its subschemas are
    checked too."""
    inner = f"{path}/{_escape(keyword)}"
    if keyword in _SCHEMA_MAPS:
        _expect(isinstance(value, dict), keyword, path, "an object of schemas")
        for name, subschema in value.items():
            _check(subschema, f"{inner}/{_escape(name)}", root=root)
    elif keyword in _SUBSCHEMAS:
        _expect(isinstance(value, dict | bool), keyword, path, "a schema")
        _check(value, inner, root=root)
    elif keyword == "anyOf":
        _expect(isinstance(value, list) and bool(value), keyword, path, "a non-empty list")
        for index, subschema in enumerate(value):
            _check(subschema, f"{inner}/{index}", root=root)
    elif keyword in _COUNTS:
        valid = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        _expect(valid, keyword, path, "an integer >= 0")
    elif keyword in _BOUNDS:
        valid = isinstance(value, int | float) and not isinstance(value, bool)
        _expect(valid and math.isfinite(value), keyword, path, "a finite number")
    else:
        _check_other(keyword, value, path, root=root)


def _check_other(keyword: str, value: Any, path: str, *, root: Mapping[str, Any]) -> None:
    if keyword == "type":
        names = value if isinstance(value, list) else [value]
        valid = bool(names) and all(isinstance(n, str) and n in TYPES for n in names)
        _expect(valid, keyword, path, f"one of {sorted(TYPES)} or a list of them")
    elif keyword == "enum":
        _expect(isinstance(value, list) and bool(value), keyword, path, "a non-empty list")
    elif keyword == "required":
        valid = isinstance(value, list) and all(isinstance(name, str) for name in value)
        _expect(valid, keyword, path, "a list of property names")
    elif keyword == "pattern":
        _expect(isinstance(value, str), keyword, path, "a regular expression")
    elif keyword == "format":
        _expect(value in FORMATS, keyword, path, f"one of {sorted(FORMATS)}")
    elif keyword == "$ref":
        _expect(_resolves(value, root), keyword, path, "a '#/...' pointer into this schema")
    # `const` takes any JSON value


def _resolves(reference: Any, root: Mapping[str, Any]) -> bool:
    """Whether `reference` is a local JSON pointer to a schema inside `root`."""
    if not isinstance(reference, str) or not (reference == "#" or reference.startswith("#/")):
        return False
    node: Any = root
    for part in reference[2:].split("/") if reference != "#" else []:
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return isinstance(node, dict | bool)


def _expect(valid: bool, keyword: str, path: str, what: str) -> None:
    if not valid:
        _refuse(f"JSON Schema keyword '{keyword}' at '{path}' must be {what}")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _refuse(reason: str) -> NoReturn:
    raise ValidationError(f"grammar is not valid: {reason}")
