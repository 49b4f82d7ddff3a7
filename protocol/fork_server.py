"""The fork server's wire: how `up`'s local provider asks a pre-imported process for a backend.

The provider holds one end of a `SOCK_SEQPACKET` socket pair; the fork server the other. Once
it has imported what it preloads, the fork server sends one packet, `Ready`. Each request is
one packet: a `SpawnRequest` in JSON, with three file descriptors passed beside it
(`SCM_RIGHTS`): the child's standard input, the child's standard output (its standard error
too), and the fork server's end of a stream socket pair that is this child's own status line.
On that status line the fork server writes, one JSON line each, `Spawned` (the child's pid) once
it has forked, then `Exited` (its exit status, as `Popen.returncode` reads: negative for a
signal) once it has reaped it, and closes it. A status line that ends without `Exited` means
the fork server itself has gone.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "MAX_REQUEST_BYTES",
    "PASSED_FDS",
    "Exited",
    "Ready",
    "SpawnRequest",
    "Spawned",
    "StatusLine",
    "encode_status",
    "parse_status",
]

MAX_REQUEST_BYTES = 65536
"""The largest request packet either side sends or reads."""
PASSED_FDS = 3
"""Descriptors beside each request: standard input, standard output, the status line."""


class Ready(BaseModel):
    """The fork server's imports are done: a child forked from now on starts at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ready"] = "ready"
    preload_s: Annotated[float, Field(ge=0)]


class SpawnRequest(BaseModel):
    """Run `tgi-serverless` with `argv` (the words after the program's name) in a forked
    child, with the fork server's environment: the one it was started with, which is what its
    imports read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    argv: Annotated[list[str], Field(min_length=1, max_length=256)]


class Spawned(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["spawned"] = "spawned"
    pid: Annotated[int, Field(gt=0)]


class Exited(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["exited"] = "exited"
    returncode: int


StatusLine = Annotated[Spawned | Exited, Field(discriminator="kind")]
_STATUS: TypeAdapter[Spawned | Exited] = TypeAdapter(StatusLine)


def encode_status(message: Spawned | Exited) -> bytes:
    return message.model_dump_json().encode() + b"\n"


def parse_status(line: bytes) -> Spawned | Exited:
    """One status line (a pydantic ValidationError when it is not one)."""
    return _STATUS.validate_json(line)
