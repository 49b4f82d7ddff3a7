"""Endpoints and worker groups: the resources the management API creates, lists, updates, deletes.

An endpoint is what clients route to: a name, its API key, its state (`active`, `suspended`,
`stopped`), Vast's autoscaling parameters (`min_load`, `target_util`, `cold_mult`,
`cold_workers`, `max_workers`, `max_queue_time`, `target_queue_time`, `inactivity_timeout`, and
the rest of `EndpointParams`), and a template for its workers (backend, `MODEL_ID`, launch
arguments). A worker group belongs to one endpoint and says what machines run its workers (its
own template, Vast's `search_params`, `gpu_ram`, `test_workers`).

On the wire an endpoint is flat, as Vast's API has it: `{"name", "endpoint_state",
"template", "min_load", "target_util", ...}`. Every value is validated; a bad one is named with
its valid range. Pure models and parsing: the store that keeps them is `router.endpoints.store`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from router.autoscaler.params import EndpointParams, ParamsError
from router.errors import InvalidRequest
from router.http.bodies import parse_model

__all__ = [
    "NAME_PATTERN",
    "PARAM_NAMES",
    "Endpoint",
    "EndpointState",
    "Template",
    "WorkerGroup",
    "endpoint_from_body",
    "new_api_key",
    "worker_group_from_body",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PARAM_NAMES = frozenset(EndpointParams.model_fields)
_ENDPOINT_FIELDS = frozenset(
    {"name", "api_key", "endpoint_state", "template", "allow_private_workers", "created_at"}
)


def new_api_key() -> str:
    return secrets.token_urlsafe(24)


class EndpointState(StrEnum):
    ACTIVE = "active"  # routes and scales
    SUSPENDED = "suspended"  # routes nothing (503); the autoscaler leaves its workers be
    STOPPED = "stopped"  # routes nothing; its workers may all be stopped


class Template(BaseModel):
    """How a worker of this endpoint is launched."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    backend: Literal["embedded", "tgi"] = Field(
        default="embedded", description="embedded (CPU or GPU, built in) or tgi (real TGI, GPU)"
    )
    model_id: str = Field(
        default="", max_length=512, alias="MODEL_ID", description="hub id or path; empty: tiny"
    )
    launch_args: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("launch_args")
    @classmethod
    def _short_args(cls, args: list[str]) -> list[str]:
        if any(len(arg) > 1024 for arg in args):
            raise ValueError("each launch argument must be at most 1024 characters")
        return args

    def view(self) -> dict[str, Any]:
        return {"backend": self.backend, "MODEL_ID": self.model_id, "launch_args": self.launch_args}


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    api_key: SecretStr = Field(default_factory=lambda: SecretStr(new_api_key()))
    endpoint_state: EndpointState = EndpointState.ACTIVE
    template: Template = Field(default_factory=Template)
    params: EndpointParams = Field(default_factory=EndpointParams)
    created_at: float = Field(default=0.0, ge=0.0, description="unix seconds")
    allow_private_workers: bool = Field(
        default=False,
        description="accept workers on loopback, private and link-local addresses "
        "(the local provider's)",
    )

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, key: SecretStr) -> SecretStr:
        value = key.get_secret_value()
        if value and not (len(value) <= 256 and value.isprintable() and " " not in value):
            raise ValueError("api_key must be 1 to 256 printable characters without spaces")
        return key

    @property
    def routes(self) -> bool:
        return self.endpoint_state is EndpointState.ACTIVE

    def view(self, *, reveal_key: bool = False) -> dict[str, Any]:
        """The endpoint as the API shows it: flat, and without its key unless asked."""
        body: dict[str, Any] = {
            "name": self.name,
            "endpoint_state": self.endpoint_state.value,
            "template": self.template.view(),
            **self.params.model_dump(),
            "created_at": self.created_at,
            "allow_private_workers": self.allow_private_workers,
        }
        if reveal_key:
            body["api_key"] = self.api_key.get_secret_value()
        return body

    def stored(self) -> dict[str, Any]:
        return {**self.view(reveal_key=True)}


class WorkerGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    endpoint: str = Field(pattern=NAME_PATTERN)
    template: Template = Field(default_factory=Template)
    search_params: str = Field(default="", max_length=4096, description="Vast offer query")
    gpu_ram: float = Field(default=24.0, ge=0.0, le=4096.0, description="GB per worker")
    test_workers: int = Field(default=3, ge=0, le=100)

    def view(self) -> dict[str, Any]:
        body = self.model_dump(exclude={"template"})
        body["template"] = self.template.view()
        return body


def endpoint_from_body(
    body: Any, *, current: Endpoint | None = None, stored: bool = False
) -> Endpoint:
    """An endpoint from a create (current None) or update body, or (`stored`) as the store
    saved it; InvalidRequest naming the field and its valid range. An update keeps every value
    it does not name."""
    body = _object(body)
    if current is not None:
        body.pop("name", None)  # the name is in the URL; renaming is not an update
    if not stored:
        body.pop("created_at", None)  # the router's to say
    unknown = set(body) - PARAM_NAMES - _ENDPOINT_FIELDS
    if unknown:
        raise InvalidRequest(_unknown_fields(unknown, "endpoint"))
    base: dict[str, Any] = {}
    if current is not None:
        base = current.stored()
        base["template"] = _template_fields(current.template)
    params = {name: base.get(name) for name in PARAM_NAMES if name in base}
    params.update({name: value for name, value in body.items() if name in PARAM_NAMES})
    values = {key: value for key, value in base.items() if key not in PARAM_NAMES}
    values.update({key: value for key, value in body.items() if key not in PARAM_NAMES})
    if "template" in body and current is not None:
        values["template"] = {**base["template"], **_object(body["template"], "template")}
    try:
        validated = EndpointParams.parse(params)
    except ParamsError as exc:
        raise InvalidRequest(str(exc)) from None
    endpoint: Endpoint = parse_model(Endpoint, {**values, "params": validated})
    return endpoint


def worker_group_from_body(body: Any, *, current: WorkerGroup | None = None) -> WorkerGroup:
    body = _object(body)
    if current is not None:
        body.pop("name", None)
        merged = {**current.model_dump(), "template": _template_fields(current.template)}
        if "template" in body:
            body["template"] = {**merged["template"], **_object(body["template"], "template")}
        body = {**merged, **body}
    unknown = set(body) - set(WorkerGroup.model_fields)
    if unknown:
        raise InvalidRequest(_unknown_fields(unknown, "worker group"))
    group: WorkerGroup = parse_model(WorkerGroup, body)
    return group


def _template_fields(template: Template) -> dict[str, Any]:
    return template.model_dump(by_alias=True)


def _object(body: Any, where: str = "body") -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidRequest(f"{where} must be a JSON object")
    return dict(body)


def _unknown_fields(unknown: set[str], what: str) -> str:
    return f"unknown {what} field(s): {', '.join(sorted(unknown))}"
