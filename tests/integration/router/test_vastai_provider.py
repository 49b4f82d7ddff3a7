"""The vastai provider against a fake server speaking Vast's REST wire format."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from router.providers.base import ProviderError, ProviderState
from router.providers.vastai import VastAIConfig, VastAIProvider
from tests.fakes.fake_vastai import FakeVast, served_fake_vast
from tests.ports import free_port


@pytest.fixture
def state() -> FakeVast:
    return FakeVast()


@pytest.fixture
async def url(state: FakeVast) -> AsyncIterator[str]:
    async with served_fake_vast(state) as base_url:
        yield base_url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def provider(
    base_url: str, session: aiohttp.ClientSession, key: str = "vast-key"
) -> VastAIProvider:
    config = VastAIConfig(api_key=key, template_hash="tmpl-abc", base_url=base_url)
    return VastAIProvider(config, session)


@pytest.fixture
def vast(url: str, session: aiohttp.ClientSession) -> VastAIProvider:
    """The provider with the fake's key, against the fake."""
    return provider(url, session)


async def test_start_rents_the_cheapest_offer_from_the_template(
    state: FakeVast, vast: VastAIProvider
) -> None:
    worker = await vast.start()
    assert worker.state is ProviderState.CREATING
    method, path, body = state.requests[-1]
    assert (method, path) == ("PUT", "/api/v0/asks/12/")  # 0.25 $/h beats 0.45
    assert body["template_hash_id"] == "tmpl-abc"
    assert body["label"] == "tgi-serverless:default"
    assert state.instances[int(worker.id)]["actual_status"] == "loading"


async def test_each_instance_gets_a_new_join_token_in_its_env(
    state: FakeVast, url: str, session: aiohttp.ClientSession
) -> None:
    minted = iter(["tgis-join-first", "tgis-join-second"])

    async def join_token() -> str:
        return next(minted)

    config = VastAIConfig(api_key="vast-key", template_hash="tmpl-abc", base_url=url)
    vast = VastAIProvider(config, session, join_token=join_token)
    await vast.start()
    await vast.start()
    creates = [body for method, path, body in state.requests if "/asks/" in path]
    assert [body["env"] for body in creates] == [
        {"TGIS_JOIN_TOKEN": "tgis-join-first"},
        {"TGIS_JOIN_TOKEN": "tgis-join-second"},
    ]
    assert "env" not in state.requests[0][2]  # the offer search carries none


async def test_the_instance_env_joins_the_token_as_it_is_when_each_instance_starts(
    state: FakeVast, url: str, session: aiohttp.ClientSession
) -> None:
    model = {"MODEL_ID": "org/first"}

    async def join_token() -> str:
        return "tgis-join-token"

    config = VastAIConfig(api_key="vast-key", template_hash="tmpl-abc", base_url=url)
    vast = VastAIProvider(config, session, join_token=join_token, instance_env=lambda: model)
    await vast.start()
    model["MODEL_ID"] = "org/second"
    await vast.start()
    creates = [body for method, path, body in state.requests if "/asks/" in path]
    assert [body["env"] for body in creates] == [
        {"MODEL_ID": "org/first", "TGIS_JOIN_TOKEN": "tgis-join-token"},
        {"MODEL_ID": "org/second", "TGIS_JOIN_TOKEN": "tgis-join-token"},
    ]


async def test_an_instance_without_a_start_date_counts_from_its_creation_not_1970(
    state: FakeVast, vast: VastAIProvider
) -> None:
    before = time.time()
    worker = await vast.start()
    state.instances[int(worker.id)]["start_date"] = None  # not started yet, as Vast lists it
    [listed] = await vast.list()
    assert before <= listed.since <= time.time()
    state.instances[int(worker.id)]["start_date"] = 1_800_000_000.0
    [started] = await vast.list()
    assert started.since == 1_800_000_000.0


async def test_the_lifecycle_round_trip(state: FakeVast, vast: VastAIProvider) -> None:
    worker = await vast.start()
    state.instances[int(worker.id)]["actual_status"] = "running"
    [listed] = await vast.list()
    assert listed.state is ProviderState.RUNNING
    assert listed.url.startswith("http://203.0.113.7:")
    await vast.stop_to_cold(worker.id)
    assert [w.state for w in await vast.list()] == [ProviderState.STOPPED]
    await vast.resume(worker.id)
    assert [w.state for w in await vast.list()] == [ProviderState.RUNNING]
    await vast.destroy(worker.id)
    assert await vast.list() == []


async def test_list_shows_only_this_endpoints_instances_and_deaths(
    state: FakeVast, vast: VastAIProvider
) -> None:
    worker = await vast.start()
    state.instances[1] = {"id": 1, "label": "someone else", "actual_status": "running"}
    state.instances[int(worker.id)]["actual_status"] = "exited"  # died, meant to run
    assert [(w.id, w.state) for w in await vast.list()] == [(worker.id, ProviderState.EXITED)]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("bad_key", "401"),
        ("server_error", "500"),
        ("no_offers", "no offer matches"),
    ],
)
async def test_failures_become_provider_errors(
    state: FakeVast, url: str, session: aiohttp.ClientSession, setup: str, message: str
) -> None:
    key = "wrong" if setup == "bad_key" else "vast-key"
    state.fail_next = 1 if setup == "server_error" else 0
    if setup == "no_offers":
        state.offers = []
    with pytest.raises(ProviderError, match=message):
        await provider(url, session, key).start()
    assert state.instances == {}


async def test_an_unreachable_api_is_a_provider_error(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ProviderError, match="GET /api/v0/instances/"):
        await provider(f"http://127.0.0.1:{free_port()}", session).list()
