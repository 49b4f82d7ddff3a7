"""The keywords a grammar's JSON Schema may use: enforced or annotating ones pass, the rest are
refused with a 422 that names the keyword and where it stands."""

from __future__ import annotations

from typing import Any

import pytest

from tgi_server.errors import ValidationError
from tgi_server.generation.json_schema import ENFORCED, checked_schema, closed_objects

SEED_SCHEMA = {
    "properties": {
        "location": {"title": "Location", "type": "string"},
        "animals_seen": {"maximum": 5, "minimum": 1, "title": "Animals Seen", "type": "integer"},
        "animals": {"items": {"type": "string"}, "title": "Animals", "type": "array"},
    },
    "required": ["location", "animals_seen", "animals"],
    "title": "Animals",
    "type": "object",
}


def refusal(schema: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        checked_schema(schema)
    assert caught.value.message.startswith("Input validation error: grammar is not valid: ")
    return caught.value.detail


def test_a_seed_schema_passes_unchanged() -> None:
    assert checked_schema(SEED_SCHEMA) is SEED_SCHEMA


def test_json_text_is_parsed_and_an_empty_schema_means_any_object() -> None:
    assert checked_schema('{"type": "integer", "minimum": 1}') == {"type": "integer", "minimum": 1}
    assert checked_schema(None) == checked_schema({}) == checked_schema("{}") == {"type": "object"}
    assert "Expecting" in refusal("{nope")
    assert "must be an object" in refusal([1, 2])


def test_every_accepted_keyword_passes() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Everything",
        "type": "object",
        "$defs": {"Pet": {"enum": ["cat", "dog"]}},
        "definitions": {"Id": {"type": "string", "format": "uuid"}},
        "properties": {
            "count": {"type": "integer", "minimum": 1, "maximum": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1.5},
            "name": {"type": "string", "minLength": 1, "maxLength": 8, "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 0, "maxItems": 3},
            "pet": {"$ref": "#/$defs/Pet"},
            "id": {"$ref": "#/definitions/Id"},
            "kind": {"const": "x", "description": "fixed"},
            "either": {"anyOf": [{"type": "null"}, {"type": ["string", "integer"]}]},
            "anything": True,
        },
        "required": ["count"],
        "additionalProperties": False,
    }
    assert checked_schema(schema) is schema
    assert keys(schema) >= ENFORCED  # the test covers every enforced keyword


def keys(node: Any) -> set[str]:
    """Every key of every object in `node`, however deep."""
    if isinstance(node, dict):
        return set(node).union(*(keys(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(keys(value) for value in node))
    return set()


@pytest.mark.parametrize(
    ("schema", "keyword", "path"),
    [
        ({"type": "integer", "multipleOf": 3}, "multipleOf", "#"),
        ({"properties": {"a": {"not": {"type": "null"}}}}, "not", "#/properties/a"),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "oneOf", "#"),
        ({"allOf": [{"type": "string"}]}, "allOf", "#"),
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems", "#"),
        ({"$defs": {"A": {"minProperties": 1}}, "$ref": "#/$defs/A"}, "minProperties", "#/$defs/A"),
        ({"anyOf": [{"type": "string"}, {"if": {}}]}, "if", "#/anyOf/1"),
        ({"items": {"patternProperties": {}}}, "patternProperties", "#/items"),
        ({"properties": {"a/b": {"nullable": True}}}, "nullable", "#/properties/a~1b"),
        (
            {"additionalProperties": {"propertyNames": {}}},
            "propertyNames",
            "#/additionalProperties",
        ),
    ],
)
def test_a_keyword_that_is_not_enforced_is_refused_by_name_and_place(
    schema: dict[str, Any], keyword: str, path: str
) -> None:
    assert refusal(schema) == (
        f"grammar is not valid: JSON Schema keyword '{keyword}' at '{path}' is not supported"
    )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string", "format": "uri"}, "'format' at '#' must be one of"),
        ({"type": "integer", "minimum": "1"}, "'minimum' at '#' must be a finite number"),
        ({"type": "integer", "maximum": True}, "'maximum' at '#' must be a finite number"),
        ({"type": "string", "maxLength": -1}, "'maxLength' at '#' must be an integer >= 0"),
        ({"type": "array", "minItems": 1.5}, "'minItems' at '#' must be an integer >= 0"),
        ({"type": "text"}, "'type' at '#' must be one of"),
        ({"type": []}, "'type' at '#' must be one of"),
        ({"enum": []}, "'enum' at '#' must be a non-empty list"),
        ({"anyOf": {}}, "'anyOf' at '#' must be a non-empty list"),
        ({"required": "a"}, "'required' at '#' must be a list of property names"),
        ({"pattern": 3}, "'pattern' at '#' must be a regular expression"),
        ({"properties": []}, "'properties' at '#' must be an object of schemas"),
        ({"items": [{"type": "string"}]}, "'items' at '#' must be a schema"),
        ({"$ref": "#/$defs/Missing"}, "'$ref' at '#' must be a '#/...' pointer"),
        ({"$ref": "https://example.com/s.json"}, "'$ref' at '#' must be a '#/...' pointer"),
        ({"properties": {"a": 3}}, "a schema must be an object or a boolean, at '#/properties/a'"),
    ],
)
def test_a_malformed_value_is_refused_by_keyword(schema: dict[str, Any], expected: str) -> None:
    assert expected in refusal(schema)


def test_a_ref_may_point_at_the_root_or_through_escaped_names() -> None:
    tree = {"type": "object", "properties": {"child": {"anyOf": [{"type": "null"}, {"$ref": "#"}]}}}
    assert checked_schema(tree) is tree
    escaped = {"$defs": {"a/b~c": {"type": "null"}}, "$ref": "#/$defs/a~1b~0c"}
    assert checked_schema(escaped) is escaped


def test_objects_that_list_properties_are_closed_unless_they_say_otherwise() -> None:
    schema = {
        "$defs": {"Inner": {"properties": {"b": {"type": "null"}}}},
        "properties": {
            "a": {"$ref": "#/$defs/Inner"},
            "open": {"properties": {}, "additionalProperties": True},
            "list": {"items": {"anyOf": [{"properties": {"c": {}}}, {"type": "object"}]}},
        },
    }
    closed = closed_objects(schema)
    assert closed["additionalProperties"] is False
    assert closed["$defs"]["Inner"]["additionalProperties"] is False
    assert closed["properties"]["open"]["additionalProperties"] is True
    any_of = closed["properties"]["list"]["items"]["anyOf"]
    assert any_of == [{"properties": {"c": {}}, "additionalProperties": False}, {"type": "object"}]
    assert "additionalProperties" not in schema  # the client's schema is left as it was
