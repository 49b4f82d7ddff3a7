"""In-test router and worker that speak the route and worker wire (architecture §4.1-4.3).

The fake router signs real Ed25519 tickets and the fake worker verifies them, so a ticket that
is altered in any way on its trip through the client is refused, as a real PyWorker would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from protocol.keys import SigningKey
from protocol.sse import encode_json_event
from protocol.tickets import sign_ticket, verify_ticket_signature
from protocol.workload import workload_of

API_KEY = "test-api-key"
WORDS = ["Once", " upon", " a", " tïme", " 🙂"]
GENERATED_TEXT = "".join(WORDS)


@dataclass(frozen=True)
class Seen:
    """One request as a fake server received it."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Scripted:
    """An error answer a fake server gives instead of its normal one."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, message: str, error_type: str, **headers: str) -> Scripted:
        body = json.dumps({"error": message, "error_type": error_type}).encode()
        return cls(status, body, {"Content-Type": "application/json", **headers})

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


def token_event(index: int, text: str, *, final: bool) -> dict[str, Any]:
    return {
        "index": index,
        "token": {"id": 100 + index, "text": text, "logprob": -0.25, "special": False},
        "top_tokens": None,
        "generated_text": GENERATED_TEXT if final else None,
        "details": (
            {"finish_reason": "length", "generated_tokens": index, "seed": 42} if final else None
        ),
    }


def stream_events(count: int = len(WORDS)) -> list[bytes]:
    """The SSE events of the whole generation, or of its first `count` tokens."""
    last = len(WORDS)
    events = [
        encode_json_event(token_event(i, word, final=i == last))
        for i, word in enumerate(WORDS, start=1)
    ]
    return events[:count]


def json_answer(body: Any) -> web.Response:
    return web.json_response(body, dumps=lambda value: json.dumps(value, ensure_ascii=False))


class FakeWorker:
    """A PyWorker in front of a TGI backend: checks tickets, answers JSON or SSE per script."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.url = ""  # set once the server listens
        self.seen: list[Seen] = []
        self.reject: Scripted | None = None
        self.stream: list[bytes] = stream_events()
        self.chunk_size = 3  # split every SSE event across several writes
        self.drop_connection_after: int | None = None
        self.delay = 0.0
        self.rejections_left: int | None = None  # None: `reject` applies to every request
        self.stall_after_first_chunk = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/generate", self._generate)
        app.router.add_post("/generate_stream", self._generate_stream)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/{path:.+}", self._echo)
        return app

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        refusal = await self._check(request)
        if refusal is not None:
            return refusal
        message = {"role": "assistant", "content": GENERATED_TEXT}
        usage = {"prompt_tokens": 3, "completion_tokens": len(WORDS), "total_tokens": 8}
        choice = {"index": 0, "message": message, "finish_reason": "length"}
        body = {"id": "chat-1", "model": "fake", "choices": [choice], "usage": usage}
        return json_answer({**body, "system_fingerprint": "fp"})

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        refusal = await self._check(request)
        if refusal is not None:
            return refusal
        return json_answer({"path": request.path, "payload": self.seen[-1].body["payload"]})

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        refusal = await self._check(request)
        if refusal is not None:
            return refusal
        details = {"finish_reason": "length", "generated_tokens": len(WORDS), "seed": None}
        return json_answer({"generated_text": GENERATED_TEXT, "details": details})

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        refusal = await self._check(request)
        if refusal is not None:
            return refusal
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        data = b"".join(self.stream)
        for offset in range(0, len(data), self.chunk_size):
            if self.drop_connection_after is not None and offset >= self.drop_connection_after:
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write(data[offset : offset + self.chunk_size])
            if offset == 0:
                await asyncio.sleep(self.stall_after_first_chunk)
        await response.write_eof()
        return response

    async def _check(self, request: web.Request) -> web.Response | None:
        body = await request.json()
        self.seen.append(Seen(request.path, dict(request.headers), body))
        await asyncio.sleep(self.delay)
        if self.reject is not None and self.rejections_left != 0:
            if self.rejections_left is not None:
                self.rejections_left -= 1
            return self.reject.response()
        ticket = body["auth_data"]
        if not verify_ticket_signature(self.key.public_key, ticket):
            return Scripted.error(401, "invalid ticket signature", "ticket_rejected").response()
        if ticket["url"] != self.url:
            return Scripted.error(403, "ticket is for another worker", "ticket_rejected").response()
        if _workload(body["payload"]) > ticket["cost"]:
            return Scripted.error(403, "workload above ticket cost", "ticket_rejected").response()
        return None


def _workload(payload: dict[str, Any]) -> int:
    """TGI's max_new_tokens, or an OpenAI body's max_tokens (a 1024 default when neither)."""
    max_tokens = payload.get("max_tokens")
    return max_tokens if isinstance(max_tokens, int) else workload_of(payload, 1024)


class FakeRouter:
    """A router for one endpoint and one worker: answers "no worker yet" `waits` times per
    request, then signs a ticket for the worker."""

    def __init__(self, key: SigningKey, worker: FakeWorker) -> None:
        self.key = key
        self.worker = worker
        self.url = ""  # set once the server listens
        self.endpoint = "default"
        self.waits = 2
        self.seen: list[Seen] = []
        self.issued: list[dict[str, Any]] = []
        self.reject: Scripted | None = None
        self.cost_override: int | None = None
        self.worker_urls: list[str] = []
        """Workers to route to, in order of preference; empty: only `worker`. As the real
        router, it skips the ones a retry names in `avoid` while another one is left."""
        self.delay = 0.0
        self.fail_after: int | None = None
        """Answer 503 to every request after this many (a router that goes down mid-wait)."""
        self.waits_without_request_idx = False
        """Answer "wait" as Vast.ai documents it: `endpoint` and `status` only."""
        self._polls: dict[int, int] = {}
        self._request_idx = itertools.count(1)
        self._reqnum = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/route/", self._route)
        return app

    async def _route(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(Seen(request.path, dict(request.headers), body))
        await asyncio.sleep(self.delay)
        if self.reject is not None:
            return self.reject.response()
        if self.fail_after is not None and len(self.seen) > self.fail_after:
            return Scripted.error(503, "router going away", "unavailable").response()
        presented = request.headers.get("Authorization") or f"Bearer {body.get('api_key')}"
        if presented != f"Bearer {API_KEY}":
            return Scripted.error(401, "invalid API key", "unauthorized").response()
        if body["endpoint"] != self.endpoint:
            return Scripted.error(404, "no such endpoint", "endpoint_not_found").response()
        request_idx = body.get("request_idx") or next(self._request_idx)
        counted = 0 if self.waits_without_request_idx else request_idx
        polls = self._polls[counted] = self._polls.get(counted, 0) + 1
        if polls <= self.waits:
            waiting = {"endpoint": self.endpoint, "status": {"loading": 1}}
            if self.waits_without_request_idx:
                return json_answer(waiting)
            return json_answer({**waiting, "request_idx": request_idx})
        url = self._pick(body.get("avoid") or [])
        return json_answer(self._ticket(body["cost"], request_idx, url))

    def _pick(self, avoid: list[str]) -> str:
        urls = self.worker_urls or [self.worker.url]
        return next((url for url in urls if url not in avoid), urls[0])

    def _ticket(self, cost: int, request_idx: int, url: str) -> dict[str, Any]:
        fields = {
            "cost": self.cost_override or cost,
            "endpoint": self.endpoint,
            "reqnum": next(self._reqnum),
            "url": url,
            "request_idx": request_idx,
            "exp": time.time() + 60.0,
            "kid": self.key.kid,
            "note": "kept exactly: café ✓",
        }
        ticket = sign_ticket(self.key.private_key, fields)
        self.issued.append(ticket)
        return ticket
