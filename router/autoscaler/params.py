"""An endpoint's autoscaling parameters: Vast's names and meanings, plus our windows and delays.

Capacity is counted in tokens/s, against each worker's measured `max_perf`. `min_load` is the
floor of active capacity; `cold_workers` the fewest workers kept "ready quick" (serving, or
stopped with the model loaded); `cold_mult` sizes the cold pool as a multiple of the active
target. Every bound is checked here, and a bad value names its valid range.
"""

from __future__ import annotations

import argparse
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "EndpointParams",
    "ParamsError",
    "add_params_flag",
    "describe_validation_error",
    "parse_assignments",
    "valid_range",
]


class ParamsError(ValueError):
    """Endpoint parameters that are out of range or inconsistent; the message says which."""


class EndpointParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_load: float = Field(default=0.0, ge=0.0, le=1e9, description="active floor, tokens/s")
    min_workers: int = Field(default=0, ge=0, le=10_000, description="active workers floor")
    target_util: float = Field(default=0.9, gt=0.0, le=1.0)
    cold_mult: float = Field(default=2.5, ge=0.0, le=100.0)
    cold_workers: int = Field(default=5, ge=0, le=10_000)
    max_workers: int = Field(default=16, ge=0, le=10_000)
    max_queue_time: float = Field(default=30.0, gt=0.0, le=3600.0)
    target_queue_time: float = Field(default=10.0, gt=0.0, le=3600.0)
    inactivity_timeout: float = Field(default=300.0, ge=0.0, le=86_400.0)
    assumed_max_perf: float = Field(
        default=400.0, gt=0.0, le=1e7, description="tokens/s per worker before one has measured"
    )
    stable_window_s: float = Field(default=30.0, gt=0.0, le=3600.0)
    panic_window_s: float = Field(default=6.0, gt=0.0, le=600.0)
    up_delay_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    down_delay_s: float = Field(
        default=10.0, ge=0.0, le=86_400.0, description="before removing workers for good"
    )
    cold_down_delay_s: float = Field(
        default=2.0, ge=0.0, le=86_400.0, description="before draining workers into the cold pool"
    )
    breach_tolerance_s: float = Field(default=4.0, ge=0.0, le=3600.0)
    max_step_up: int = Field(default=64, ge=1, le=10_000)
    max_step_down: int = Field(default=8, ge=1, le=10_000)
    tick_s: float = Field(default=1.0, gt=0.0, le=600.0)
    drain_grace_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    ready_timeout_s: float = Field(default=900.0, gt=0.0, le=86_400.0)

    @model_validator(mode="before")
    @classmethod
    def _cold_pool_fits_max_workers(cls, data: Any) -> Any:
        """Left unset, `cold_workers` (5) is lowered to a smaller `max_workers`: asking for at
        most 2 workers should not be refused for a cold pool nobody asked for."""
        if not isinstance(data, dict) or "cold_workers" in data or "max_workers" not in data:
            return data
        try:
            cap = int(data["max_workers"])
        except (TypeError, ValueError, OverflowError):  # "x", None, inf: the field says why
            return data
        default = cls.model_fields["cold_workers"].default
        return {**data, "cold_workers": min(default, cap)} if 0 <= cap < default else data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        floor = max(self.min_workers, self.cold_workers)
        if self.max_workers < floor:
            raise ValueError(
                f"max_workers must be in [{floor}, 10000]: at least min_workers "
                f"({self.min_workers}) and cold_workers ({self.cold_workers})"
            )
        if self.panic_window_s > self.stable_window_s:
            raise ValueError(
                f"panic_window_s must be in (0, {self.stable_window_s}]: "
                "no longer than stable_window_s"
            )
        if self.target_queue_time > self.max_queue_time:
            raise ValueError(
                f"target_queue_time must be in (0, {self.max_queue_time}]: "
                "no more than max_queue_time"
            )
        return self

    @classmethod
    def from_assignments(
        cls, pairs: list[str], defaults: dict[str, object] | None = None
    ) -> EndpointParams:
        """Parameters from `NAME=VALUE` strings (as --set gives them) over `defaults`."""
        return cls.parse({**(defaults or {}), **parse_assignments(pairs)})

    @classmethod
    def parse(cls, values: dict[str, object]) -> EndpointParams:
        """Validate `values`; raise ParamsError with one line per problem."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ParamsError(describe_validation_error(exc)) from None


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`NAME=VALUE` strings (as --set gives them) as a dict; ParamsError for one without `=`."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParamsError(f"--set wants NAME=VALUE, not {pair!r}")
        values[name.strip()] = value.strip()
    return values


def add_params_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    help: str = "an endpoint parameter (min_load, target_util, max_workers, ...); repeatable",
) -> None:
    """The repeatable `--set NAME=VALUE` flag, into `args.params`, that
    `EndpointParams.from_assignments` reads."""
    parser.add_argument(
        "--set", dest="params", action="append", default=[], metavar="NAME=VALUE", help=help
    )


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the parameter and its valid range."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        if not name:
            problems.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        problems.append(f"{name}: {error['msg']}{valid_range(name)}")
    return "; ".join(problems)


def valid_range(name: str) -> str:
    """` (valid range: [0, 10000])` for a bounded field of EndpointParams, else ``."""
    field = EndpointParams.model_fields.get(name)
    if field is None:
        return ""
    low, high = "(-inf", "inf)"
    for item in field.metadata:
        if getattr(item, "gt", None) is not None:
            low = f"({item.gt}"
        if getattr(item, "ge", None) is not None:
            low = f"[{item.ge}"
        if getattr(item, "lt", None) is not None:
            high = f"{item.lt})"
        if getattr(item, "le", None) is not None:
            high = f"{item.le}]"
    return f" (valid range: {low}, {high})"
