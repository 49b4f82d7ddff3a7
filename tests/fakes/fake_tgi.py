"""A scriptable stand-in for a TGI backend, for the faults a real one will not produce on demand.

It speaks TGI's wire format (health, info, JSON generate, SSE generate_stream) and records
every payload it receives, so tests can assert what did, and did not, reach the backend.
As a process it prints TGI's `--json-output` "Connected" line once it listens, which is what
Vast's PyWorker waits for in the model log:

    python -m tests.fakes.fake_tgi --port 5001 [--tokens 3] > model.log
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from protocol import encode_json_event

Mode = Literal[
    "ok",
    "error_422",
    "error_500",
    "die_mid_stream",
    "slow_stream",
    "stall_stream",
    "stall_body",
    "redirect",  # /generate answers 307 (which would repeat the POST) to `redirect_to`
]

FAKE_INFO = {
    "model_id": "fake-tgi",
    "model_sha": None,
    "model_pipeline_tag": "text-generation",
    "max_concurrent_requests": 128,
    "max_best_of": 2,
    "max_stop_sequences": 4,
    "max_input_tokens": 1024,
    "max_total_tokens": 2048,
    "validation_workers": 2,
    "max_client_batch_size": 4,
    "router": "text-generation-router",
    "version": "3.3.6",
    "sha": None,
    "docker_label": None,
}


@dataclass
class FakeTGI:
    mode: Mode = "ok"
    healthy: bool = True
    tokens: int = 3
    received: list[tuple[str, Any]] = field(default_factory=list)
    stream_started: asyncio.Event = field(default_factory=asyncio.Event)
    stream_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    # Faults and observations beyond the modes: a delay before any answer, a gate every
    # generate waits at (set = open), padding that makes stream events big, and counters.
    first_byte_delay_s: float = 0.0
    gate: asyncio.Event | None = None
    event_padding: int = 0
    active: int = 0
    peak_active: int = 0
    stream_bytes_sent: int = 0
    generate_connections: set[object] = field(default_factory=set)  # peers that POSTed
    redirect_to: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/info", self.info)
        app.router.add_post("/generate", self.generate)
        app.router.add_post("/generate_stream", self.generate_stream)
        for path in ("/invocations", "/tokenize", "/chat_tokenize"):
            app.router.add_post(path, self.echo)
        app.router.add_get("/v1/models", self.models)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        """The route and the payload it got, back (the routes a relay only has to reach)."""
        payload = await request.json()
        self.received.append((request.path, payload))
        return web.json_response({"route": request.path, "payload": payload})

    async def models(self, request: web.Request) -> web.Response:
        entry = {"id": FAKE_INFO["model_id"], "object": "model", "created": 0}
        return web.json_response({"object": "list", "data": [entry]})

    def payloads(self, path: str) -> list[Any]:
        return [payload for p, payload in self.received if p == path]

    async def health(self, request: web.Request) -> web.Response:
        if not self.healthy:
            return web.json_response(
                {"error": "unhealthy", "error_type": "healthcheck"}, status=503
            )
        return web.Response()

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(FAKE_INFO)

    async def _enter(self) -> None:
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        if self.first_byte_delay_s:
            await asyncio.sleep(self.first_byte_delay_s)
        if self.gate is not None:
            await self.gate.wait()

    async def generate(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        self.received.append(("/generate", payload))
        if request.transport is not None:
            self.generate_connections.add(request.transport.get_extra_info("peername"))
        try:
            await self._enter()
            if self.mode == "stall_body":
                return await self._stalled_body(request)
            return self._generate_answer()
        finally:
            self.active -= 1

    async def _stalled_body(self, request: web.Request) -> web.StreamResponse:
        """A head that promises 100 bytes, 10 of them, then silence."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 100
        await response.prepare(request)
        await response.write(b'{"generat')
        await asyncio.sleep(3600)
        return response

    def _generate_answer(self) -> web.Response:
        if self.mode == "redirect":
            return web.Response(status=307, headers={"Location": self.redirect_to})
        if self.mode == "error_422":
            error = {"error": "Input validation error: `top_p` bad", "error_type": "validation"}
            return web.json_response(error, status=422)
        if self.mode == "error_500":
            return web.json_response({"error": "boom", "error_type": "generation"}, status=500)
        body: dict[str, Any] = {
            "generated_text": " a b c",
            "details": {
                "finish_reason": "length",
                "generated_tokens": self.tokens,
                "seed": None,
                "prefill": [],
                "tokens": [],
            },
        }
        headers = {"x-generated-tokens": str(self.tokens), "x-compute-type": "fake"}
        return web.json_response(body, headers=headers)

    async def generate_stream(self, request: web.Request) -> web.StreamResponse:
        self.received.append(("/generate_stream", await request.json()))
        try:
            await self._enter()
            if self.mode in ("error_422", "error_500"):
                return self._generate_answer()  # TGI refuses before the stream starts
            return await self._stream(request)
        finally:
            self.active -= 1

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.stream_started.set()
        try:
            for index in range(1, self.tokens + 1):
                event = stream_event(index, self.tokens, self.event_padding)
                await response.write(event)
                self.stream_bytes_sent += len(event)
                if self.mode == "stall_stream":
                    await asyncio.sleep(3600)
                if self.mode == "die_mid_stream" and index == 1:
                    await response.write(b'data: {"index":2,"tok')
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if self.mode == "slow_stream":
                    await asyncio.sleep(0.2)
        except (asyncio.CancelledError, ConnectionResetError):
            self.stream_cancelled.set()
            raise
        await response.write_eof()
        return response


def stream_event(index: int, last: int, padding: int = 0) -> bytes:
    final = index == last
    text = f" t{index}" + " " * padding
    return encode_json_event(
        {
            "index": index,
            "token": {"id": index, "text": text, "logprob": -0.5, "special": False},
            "generated_text": " ".join(f"t{i}" for i in range(1, last + 1)) if final else None,
            "details": None,
        }
    )


def expected_stream(tokens: int) -> bytes:
    return b"".join(stream_event(i, tokens) for i in range(1, tokens + 1))


def dumps(payload: Any) -> str:
    return json.dumps(payload)


CONNECTED_LINE = json.dumps(
    {
        "timestamp": "2026-01-01T00:00:00.000000Z",
        "level": "INFO",
        "message": "Connected",
        "target": "text_generation_router::server",
    },
    separators=(",", ":"),
)
"""What TGI logs with `--json-output` once it serves (its PyWorker's "model loaded" signal)."""


def main() -> None:
    parser = argparse.ArgumentParser(description="a TGI stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=3)
    args = parser.parse_args()

    def announce(_: str) -> None:  # called once the port is bound
        print(CONNECTED_LINE, flush=True)

    app = FakeTGI(tokens=args.tokens).app()
    web.run_app(app, host="127.0.0.1", port=args.port, print=announce, access_log=None)


if __name__ == "__main__":
    main()
