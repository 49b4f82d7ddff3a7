"""Test workers that register as real ones do: a join token on the first report, then the
credential the router answered with. In process (`report`, over a TestClient), or against a
running router (`join_token_from_api`)."""

from __future__ import annotations

import json
import urllib.request
import weakref
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from router.http.state import CLOCK, IDENTITIES, SETTINGS

_CREDENTIALS: weakref.WeakKeyDictionary[web.Application, dict[str, str]] = (
    weakref.WeakKeyDictionary()
)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def join_token(
    app: web.Application, endpoint: str = "default", worker_id: str | None = None
) -> str:
    """A join token minted in process (kept in memory; `save` is not awaited)."""
    return app[IDENTITIES].book.mint(endpoint, now=app[CLOCK](), ttl_s=3600.0, worker_id=worker_id)


def credential(app: web.Application, worker_id: str) -> str:
    """The credential `worker_id` registered with through `report`."""
    return _CREDENTIALS[app][worker_id]


async def report(client: TestClient[Any, Any], body: dict[str, Any]) -> Any:
    """Post `body` as the worker it names: registering it with a new join token for its id the
    first time this app sees it (replacing a registration a restarted router remembers), with
    its credential after. A `stopped` report ends its registration here too."""
    app = client.app
    assert app is not None
    known = _CREDENTIALS.setdefault(app, {})
    worker_id = str(body.get("id"))
    endpoint = body.get("endpoint", app[SETTINGS].endpoint)  # none named: the router's own
    secret = known.get(worker_id) or join_token(app, endpoint, worker_id)
    response = await client.post("/worker_status/", json=body, headers=bearer(secret))
    if response.status == 200:
        answer = await response.json()
        if "credential" in answer:
            known[worker_id] = answer["credential"]
        if body.get("state") == "stopped":
            known.pop(worker_id, None)
    return response


def join_token_from_api(router_url: str, admin_key: str, endpoint: str = "default") -> str:
    """A join token from a running router's management API."""
    request = urllib.request.Request(
        f"{router_url}/api/v0/endpoints/{endpoint}/join-tokens",
        data=b"{}",
        method="POST",
        headers={**bearer(admin_key), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["join_token"])
