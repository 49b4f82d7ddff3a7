"""Renders the Helm chart under templates/k8s/ without Helm, which cannot be installed here: the
few Go-template actions the chart uses, evaluated as Helm does, and any other action refused
(UnsupportedAction), so that the chart cannot grow past what this check understands.

Understood: `.Release.Name`, `.Release.Namespace`, `.Values.a.b` (printed as Go prints it, or
`| quote`d), `toYaml .Values.a | nindent N`, `if`/`else if`/`else`/`end` on a `.Values` path
(Go's truth: false, 0, "", empty and absent are false), and `{{-`/`-}}` whitespace trimming.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Release", "UnsupportedAction", "render_chart", "render_template"]

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_PATH = r"\.(Values(?:\.[A-Za-z_][A-Za-z0-9_]*)+|Release\.Name|Release\.Namespace)"


class UnsupportedAction(ValueError):
    """A template action this renderer does not understand."""


@dataclass(frozen=True)
class Release:
    name: str = "tgis"
    namespace: str = "llm"


@dataclass
class _Scope:
    printing: bool  # this branch's text is kept
    decided: bool  # some branch of this if/else chain was taken
    outer: bool  # the enclosing branch's text is kept
    kind: str = field(default="if")


def render_chart(chart: Path, values: Mapping[str, Any], release: Release) -> dict[str, str]:
    """Each template under `chart`/templates, rendered with `values` over the chart's own."""
    merged = _merge(yaml.safe_load((chart / "values.yaml").read_text()), values)
    return {
        path.name: render_template(path.read_text(), merged, release)
        for path in sorted((chart / "templates").glob("*.yaml"))
    }


def render_template(text: str, values: Mapping[str, Any], release: Release) -> str:
    context = {"Values": values, "Release": {"Name": release.name, "Namespace": release.namespace}}
    out: list[str] = []
    scopes: list[_Scope] = []
    position, trim_next = 0, False
    for match in _ACTION.finditer(text):
        literal = text[position : match.start()]
        if trim_next:
            literal = literal.lstrip()
        if match.group(1):
            literal = literal.rstrip()
        if not scopes or scopes[-1].printing:
            out.append(literal)
        position, trim_next = match.end(), bool(match.group(3))
        _act(match.group(2), context, scopes, out)
    if scopes:
        raise UnsupportedAction("an `if` without its `end`")
    tail = text[position:]
    out.append(tail.lstrip() if trim_next else tail)
    return "".join(out)


def _act(action: str, context: Mapping[str, Any], scopes: list[_Scope], out: list[str]) -> None:
    printing = not scopes or scopes[-1].printing
    if match := re.fullmatch(rf"if {_PATH}", action):
        taken = printing and _true(_lookup(context, match.group(1)))
        scopes.append(_Scope(printing=taken, decided=taken, outer=printing))
    elif match := re.fullmatch(rf"else if {_PATH}", action):
        scope = _open(scopes)
        taken = scope.outer and not scope.decided and _true(_lookup(context, match.group(1)))
        scope.printing, scope.decided = taken, scope.decided or taken
    elif action == "else":
        scope = _open(scopes)
        scope.printing, scope.decided = scope.outer and not scope.decided, True
    elif action == "end":
        _open(scopes)
        scopes.pop()
    elif match := re.fullmatch(rf"{_PATH}( \| quote)?", action):
        if printing:
            value = _lookup(context, match.group(1))
            out.append(_quote(value) if match.group(2) else _print(value))
    elif match := re.fullmatch(rf"toYaml {_PATH} \| nindent (\d+)", action):
        if printing:
            dumped = _to_yaml(_lookup(context, match.group(1)))
            pad = " " * int(match.group(2))
            out.append("\n" + "\n".join(pad + line for line in dumped.splitlines()))
    else:
        raise UnsupportedAction(f"{{{{ {action} }}}}")


def _open(scopes: list[_Scope]) -> _Scope:
    if not scopes:
        raise UnsupportedAction("`else` or `end` without its `if`")
    return scopes[-1]


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    value: Any = context
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _true(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, list | dict) and not value)


def _print(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise UnsupportedAction(f"printing a {type(value).__name__} (use toYaml)")


def _quote(value: Any) -> str:
    return json.dumps(_print(value))


def _to_yaml(value: Any) -> str:
    """As Helm's toYaml: block style, keys sorted, no trailing newline."""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return override
