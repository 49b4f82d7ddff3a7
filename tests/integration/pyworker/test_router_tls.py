"""The router over TLS (`router.tls`), with a certificate made at test time: a PyWorker that
pins the router's fingerprint, or trusts its CA, fetches keys and reports; one that pins another
fingerprint, or trusts nothing but the system's CAs, reaches nothing; a plain-HTTP client gets
no answer; the SDK trusts the CA it is given."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from client import AsyncClient
from client.errors import ConnectionFailed
from protocol import SigningKey
from pyworker.state import LIFECYCLE
from router.http.app import create_app as create_router_app
from router.http.state import REGISTRY
from router.settings import RouterSettings
from router.tls import server_ssl_context
from tests.fakes.fake_tgi import FakeTGI
from tests.integration.pyworker.stack import (
    API_KEY,
    ServerFactory,
    serve_worker,
    url_of,
    wait_until,
)
from tests.tls_certs import ServerCertificate, make_server_certificate
from tests.worker_identity import join_token


@pytest.fixture
def certificate(tmp_path: Path) -> ServerCertificate:
    return make_server_certificate(tmp_path)


@pytest.fixture
async def tls_router(
    aiohttp_server: ServerFactory, tmp_path: Path, certificate: ServerCertificate
) -> TestServer:
    settings = RouterSettings(
        api_key=API_KEY,
        allow_private_workers=True,  # its workers listen on 127.0.0.1
        state_dir=tmp_path / "state",
        route_timeout_s=5,
        tls_cert=certificate.cert_file,
        tls_key=certificate.key_file,
    )
    context = server_ssl_context(settings.tls_cert, settings.tls_key)
    app = create_router_app(settings, signing_key=SigningKey.generate())
    return await aiohttp_server(app, ssl=context)


@pytest.fixture
async def backend_url(aiohttp_server: ServerFactory) -> str:
    return url_of(await aiohttp_server(FakeTGI().app()))


def tls_url(router: TestServer) -> str:
    url = url_of(router)
    assert url.startswith("https://127.0.0.1:")
    return url


async def joined_worker(
    aiohttp_server: ServerFactory,
    router: TestServer,
    backend_url: str,
    worker_id: str,
    *,
    registered: bool = True,
    **trust: str,
) -> TestServer:
    """A worker with a join token for `router`, trusting it as `trust` says; once `registered`,
    the router knows it (a worker that is not may still be bringing itself up)."""
    worker = await serve_worker(
        aiohttp_server,
        tls_url(router),
        backend_url,
        wait_until_serving=registered,
        worker_id=worker_id,
        join_token=join_token(router.app, worker_id=worker_id),
        **trust,
    )
    if registered:
        await wait_until(lambda: router.app[REGISTRY].get(worker_id) is not None)
    return worker


@pytest.mark.parametrize("colons", [False, True])
async def test_a_worker_pinned_to_the_routers_fingerprint_fetches_keys_and_reports(
    aiohttp_server: ServerFactory,
    tls_router: TestServer,
    backend_url: str,
    certificate: ServerCertificate,
    colons: bool,
) -> None:
    pin = certificate.fingerprint
    if colons:
        pin = ":".join(pin[i : i + 2] for i in range(0, len(pin), 2)).upper()
    worker = await joined_worker(
        aiohttp_server, tls_router, backend_url, "pinned", router_fingerprint=pin
    )
    assert worker.app[LIFECYCLE].serving  # it had the keys: bring-up fetches them first


async def test_a_worker_that_trusts_the_routers_ca_fetches_keys_and_reports(
    aiohttp_server: ServerFactory,
    tls_router: TestServer,
    backend_url: str,
    certificate: ServerCertificate,
) -> None:
    ca_file = str(certificate.ca_file)
    await joined_worker(aiohttp_server, tls_router, backend_url, "ca", router_ca_file=ca_file)


@pytest.mark.parametrize(
    "trust",
    [
        {"router_fingerprint": "00" * 32},  # another certificate's
        {},  # the system's CAs, which never signed this one
    ],
)
async def test_a_worker_that_does_not_trust_the_router_reaches_nothing(
    aiohttp_server: ServerFactory,
    tls_router: TestServer,
    backend_url: str,
    trust: dict[str, str],
) -> None:
    worker = await joined_worker(
        aiohttp_server, tls_router, backend_url, "untrusting", registered=False, **trust
    )
    with pytest.raises(AssertionError, match="not met"):
        await wait_until(lambda: worker.app[LIFECYCLE].serving, limit_s=1.5)
    assert tls_router.app[REGISTRY].get("untrusting") is None


async def test_plain_http_to_the_tls_router_gets_no_answer(tls_router: TestServer) -> None:
    plain = tls_url(tls_router).replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{plain}/health") as response:
                await response.read()


async def test_the_sdk_trusts_the_ca_it_is_given(
    aiohttp_server: ServerFactory,
    tls_router: TestServer,
    backend_url: str,
    certificate: ServerCertificate,
) -> None:
    pin = certificate.fingerprint
    await joined_worker(aiohttp_server, tls_router, backend_url, "w1", router_fingerprint=pin)
    context = ssl.create_default_context(cafile=certificate.ca_file)
    async with AsyncClient(tls_url(tls_router), api_key=API_KEY, ssl_context=context) as client:
        assert (await client.route(3)).url.startswith("http://127.0.0.1:")
    async with AsyncClient(tls_url(tls_router), api_key=API_KEY) as client:
        with pytest.raises(ConnectionFailed):
            await client.route(3)
