"""What a PyWorker sees of a router, with faults to order: the native router's keys at `/keys`,
Vast's one RSA key at `/pubkey/`, and `/worker_status/`, which records every report."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from protocol import KeySet, SigningKey
from protocol.vast_tickets import rsa_public_key_pem


def _rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class StandInRouter:
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])
    """The native keys, published at `/keys`."""
    rsa_key: RSAPrivateKey | None = None
    """Vast's scheme: the one key, published at `/pubkey/`; made when first asked for."""
    refuse_keys: int = 0  # answer 503 to this many key fetches first
    refuse_reports: int = 0  # answer 503 to this many reports first
    hang_reports: bool = False  # hold reports until `release` is set
    release: asyncio.Event = field(default_factory=asyncio.Event)
    key_fetches: int = 0
    """Fetches of `/keys` and `/pubkey/` together (a worker uses the one of its scheme)."""
    report_attempts: list[float] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    join_token: str | None = None
    """A report bearing this token is answered with `credential` (once: then it is used)."""
    credential: str = "tgis-worker-stand-in"
    authorizations: list[str] = field(default_factory=list)
    """The `Authorization` header of each accepted report."""

    @property
    def key(self) -> RSAPrivateKey:
        """Vast's key (replace it to rotate)."""
        if self.rsa_key is None:
            self.rsa_key = _rsa_key()
        return self.rsa_key

    @key.setter
    def key(self, key: RSAPrivateKey) -> None:
        self.rsa_key = key

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/keys", self.get_keys)
        app.router.add_get("/pubkey/", self.pubkey)
        app.router.add_post("/worker_status/", self.worker_status)
        return app

    def states(self) -> list[str]:
        return [report["state"] for report in self.reports]

    async def get_keys(self, request: web.Request) -> web.Response:
        if refused := self._refused_key_fetch():
            return refused
        body = KeySet(keys=[key.published() for key in self.keys]).model_dump_json()
        return web.Response(text=body, content_type="application/json")

    async def pubkey(self, request: web.Request) -> web.Response:
        if refused := self._refused_key_fetch():
            return refused
        return web.Response(text=rsa_public_key_pem(self.key.public_key()))

    async def worker_status(self, request: web.Request) -> web.Response:
        self.report_attempts.append(time.monotonic())
        if self.hang_reports:
            await self.release.wait()
        if self.refuse_reports:
            self.refuse_reports -= 1
            return web.json_response({"error": "busy"}, status=503)
        self.reports.append(await request.json())
        presented = request.headers.get("Authorization", "")
        self.authorizations.append(presented)
        if self.join_token is not None and presented == f"Bearer {self.join_token}":
            self.join_token = None
            return web.json_response({"accepted": True, "credential": self.credential})
        return web.json_response({})

    def _refused_key_fetch(self) -> web.Response | None:
        self.key_fetches += 1
        if not self.refuse_keys:
            return None
        self.refuse_keys -= 1
        return web.json_response({"error": "starting"}, status=503)
