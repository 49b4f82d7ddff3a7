"""A TGI stand-in with known timing: the first token `ttft` seconds after a request arrives, then
one token every `gap` seconds, each sent on an absolute schedule (no drift from slow writes).

It speaks `/generate_stream` (TGI events, `details.generated_tokens` in the final one),
`/v1/completions` with `stream: true` (OpenAI chunks, `usage` last), `/health`, `/info` and
`/v1/models`, and `/stats` (its own lateness). Every event carries `server_time` (the server's
`time.perf_counter()` when it wrote the event).

    python -m tests.fakes.paced_tgi --port 5001 --ttft 0.05 --gap 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvloop
from aiohttp import web

__all__ = ["PacedTGI", "main"]


def _event(payload: dict[str, Any]) -> bytes:
    return b"data:" + orjson.dumps(payload) + b"\n\n"


@dataclass
class PacedTGI:
    ttft: float = 0.05
    gap: float = 0.02
    status: int = 200
    """Answer every generation with this status (429 and 503 with Retry-After) when not 200."""
    capacity: int | None = None
    """At most this many streams at once; a request beyond it gets 429, as TGI's queue limit."""
    active: int = 0
    requests: int = 0
    lateness: list[float] = field(default_factory=list)
    """How late each event was written compared with its schedule, in seconds."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/info", self._info)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/generate_stream", self._generate_stream)
        app.router.add_post("/v1/completions", self._completions)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response()

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_id": "paced-fake", "version": "3.3.6"})

    async def _stats(self, request: web.Request) -> web.Response:
        """The fake's own lateness: how much of a client's timing error is the server's."""
        late = sorted(self.lateness)
        p99 = late[int(0.99 * (len(late) - 1))] if late else 0.0
        body = {"events": len(late), "lateness_p99_s": p99, "requests": self.requests}
        return web.json_response(body)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "paced-fake"}]})

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        body = await request.json()
        count = int(body.get("parameters", {}).get("max_new_tokens") or 20)
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        return await self._stream(request, start, count, self._tgi_event)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        body = await request.json()
        count = int(body.get("max_tokens") or 20)
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        return await self._stream(request, start, count, self._openai_event)

    def _refusal(self) -> web.Response | None:
        """Counts the request; TGI's overload answer when `status` says so or it is full."""
        self.requests += 1
        full = self.capacity is not None and self.active >= self.capacity
        if self.status == 200 and not full:
            return None
        error = {"error": "Model is overloaded", "error_type": "overloaded"}
        status = 429 if full else self.status
        return web.json_response(error, status=status, headers={"Retry-After": "1"})

    async def _stream(
        self,
        request: web.Request,
        start: float,
        count: int,
        make: Callable[[int, int, float], bytes],
    ) -> web.StreamResponse:
        """`count` events made by `make`, the first `ttft` after `start`, then one every `gap`."""
        self.active += 1
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for index in range(1, count + 1):
                due = start + self.ttft + (index - 1) * self.gap
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.perf_counter()
                self.lateness.append(now - due)
                await response.write(make(index, count, now))
            if make == self._openai_event:
                usage = {"prompt_tokens": 1, "completion_tokens": count, "total_tokens": count + 1}
                await response.write(_event({"choices": [], "usage": usage}))
                await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        finally:
            self.active -= 1

    @staticmethod
    def _tgi_event(index: int, count: int, now: float) -> bytes:
        final = index == count
        return _event(
            {
                "index": index,
                "token": {"id": index, "text": " w", "logprob": -0.1, "special": False},
                "generated_text": " w" * count if final else None,
                "details": {"finish_reason": "length", "generated_tokens": count, "seed": None}
                if final
                else None,
                "server_time": now,
            }
        )

    @staticmethod
    def _openai_event(index: int, count: int, now: float) -> bytes:
        finish = "length" if index == count else None
        choice = {"index": 0, "text": " w", "finish_reason": finish}
        return _event({"id": "c", "object": "text_completion", "choices": [choice], "t": now})


def main() -> None:
    parser = argparse.ArgumentParser(description="a TGI stand-in with known timing")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--gap", type=float, default=0.02)
    args = parser.parse_args()
    fake = PacedTGI(ttft=args.ttft, gap=args.gap)
    loop = uvloop.new_event_loop()  # the fake's own lateness should stay well below the client's
    web.run_app(
        fake.app(), host="127.0.0.1", port=args.port, print=None, access_log=None, loop=loop
    )


if __name__ == "__main__":
    main()
