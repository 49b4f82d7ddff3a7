"""What the autoscaler loop needs from a place that runs workers: start, stop to cold, resume,
destroy, list. Providers raise ProviderError (or its subclasses) for anything that failed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = ["Provider", "ProviderError", "ProviderState", "ProviderWorker"]


class ProviderError(Exception):
    """A provider call failed; the message says what and where."""


class ProviderState(StrEnum):
    CREATING = "creating"  # asked for; not running yet
    RUNNING = "running"  # running (serving, or loading: the router's registry says which)
    STOPPED = "stopped"  # stopped with the model ready: the cold pool
    EXITED = "exited"  # died, or failed to start
    ERROR = "error"  # the provider reports a fault


@dataclass(frozen=True)
class ProviderWorker:
    id: str
    state: ProviderState
    url: str = ""
    since: float = 0.0


class Provider(Protocol):
    async def start(self) -> ProviderWorker:
        """Create a worker (it loads its model and reports to the router); return it at once."""
        ...

    async def stop_to_cold(self, worker_id: str) -> None:
        """Stop serving but keep the model ready, so resume takes seconds."""
        ...

    async def resume(self, worker_id: str) -> None: ...

    async def destroy(self, worker_id: str) -> None: ...

    async def list(self) -> list[ProviderWorker]: ...
