"""What every service's settings share: they read only the environment variables they declare.

A field names its variables in its `validation_alias`: one name, or several (`AliasChoices`,
the first one set wins). Names are matched exactly as spelled, upper case included; a field that
names none is not read from the environment at all. There is no prefix, no fallback to the
field's own name and no case folding: a bare `REPLAY_WINDOW=7` or a lower-case `tgis_port` in
the environment changes nothing, and `PORT` changes only the backend, which declares it (TGI's
name). Unknown fields are refused.

A name ending in `<...>` is a family: `VAST_TCP_PORT_<WORKER_PORT>` gives its field every
variable that starts with `VAST_TCP_PORT_`, as {what follows the prefix: value}.

Settings are built once, at start-up, by a command: `from_environment(os.environ, **flags)`,
or `from_command_line(args, os.environ)`, which takes the flags argparse parsed whose names
(their `dest`) are the settings' field names. Built directly (`RouterSettings(port=0)`, as
tests do), they read no environment. No I/O here: the environment is handed in. This lives in
`common`, which every package may import, because the rule is the same for all of them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Self

from pydantic import AliasChoices, BaseModel, ConfigDict
from pydantic.fields import FieldInfo

__all__ = ["ServiceSettings", "declared_names"]


class ServiceSettings(BaseModel):
    """Base of the router's, the PyWorker's, the backend's and the client commands' settings."""

    model_config = ConfigDict(
        populate_by_name=True, extra="forbid", frozen=True, validate_default=True
    )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **flags: object) -> Self:
        """The settings `environ` gives, under each field's declared names, with `flags` over
        them: flags are by field name, and a flag whose value is None was not given."""
        values: dict[str, object] = {}
        for name, field in cls.model_fields.items():
            value = _first_set(declared_names(field), environ)
            if value is not None:
                values[name] = value
        values.update({name: value for name, value in flags.items() if value is not None})
        return cls.model_validate(values)

    @classmethod
    def from_command_line(
        cls, args: argparse.Namespace, environ: Mapping[str, str], **extra: object
    ) -> Self:
        """`from_environment` with the flags in `args` that are named after a field (argparse's
        `dest`; the command's other flags are not settings) and `extra` over them."""
        flags = {name: value for name, value in vars(args).items() if name in cls.model_fields}
        return cls.from_environment(environ, **{**flags, **extra})

    @classmethod
    def one_from_environment(cls, field: str, environ: Mapping[str, str]) -> str | None:
        """What `environ` gives the one setting `field` under its declared names, unvalidated
        (None when unset), reading none of the others: for a command that needs one setting of
        another service, whose other variables need not be valid where the command runs."""
        value = _first_set(declared_names(cls.model_fields[field]), environ)
        return value if isinstance(value, str) else None

    @classmethod
    def environment_names(cls) -> list[str]:
        """Every variable these settings read, in field order."""
        return [name for field in cls.model_fields.values() for name in declared_names(field)]


def declared_names(field: FieldInfo) -> list[str]:
    """The environment variables `field` is read from, most preferred first."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


def _first_set(names: list[str], environ: Mapping[str, str]) -> str | dict[str, str] | None:
    for name in names:
        value = _read(name, environ)
        if value is not None:
            return value
    return None


def _read(name: str, environ: Mapping[str, str]) -> str | dict[str, str] | None:
    prefix, family, _ = name.partition("<")
    if not family:
        return environ.get(name)
    members = {
        variable[len(prefix) :]: value
        for variable, value in environ.items()
        if variable.startswith(prefix) and len(variable) > len(prefix)
    }
    return members or None
