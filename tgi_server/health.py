"""`GET /health` as TGI answers it: cheap while all is well, a real generation after a failure.

TGI keeps a health flag that any failed generation clears. While it is set, a health check only
asks whether the model server is there; once cleared, the check runs a one-token generation of
"liveness" and stores the outcome back in the flag. Here the flag is "no forward pass has
failed since the last good check", read from the scheduler's counters.
"""

from __future__ import annotations

import asyncio

from tgi_server.engine.base import ModelEngine
from tgi_server.errors import BackendError
from tgi_server.generation.events import FailureEvent
from tgi_server.validation import SamplingParams, ValidatedRequest

__all__ = ["HealthCheck"]

LIVENESS_INPUT = "liveness"
LIVENESS_TIMEOUT_S = 30.0


class HealthCheck:
    def __init__(self, engine: ModelEngine, *, timeout_s: float = LIVENESS_TIMEOUT_S) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._failures_seen = 0

    async def healthy(self) -> bool:
        """Whether the engine runs and, after any failed forward pass, can generate again."""
        if not self._engine.running:
            return False
        failures = sum(self._engine.stats.failed_forwards.values())
        if failures == self._failures_seen:
            return True
        if not await self._generates():
            return False
        self._failures_seen = failures
        return True

    async def _generates(self) -> bool:
        ids = self._engine.model.codec.encode(LIVENESS_INPUT)
        request = ValidatedRequest(
            inputs=LIVENESS_INPUT,
            input_ids=tuple(ids[-1:]),  # TGI truncates it to one token
            sampling=SamplingParams(),
            max_new_tokens=1,
        )
        try:
            with self._engine.submit(request) as handle:
                event = await asyncio.wait_for(handle.next_event(), self._timeout_s)
        except (TimeoutError, BackendError):  # too slow, or the engine has stopped
            return False
        return not isinstance(event, FailureEvent)
