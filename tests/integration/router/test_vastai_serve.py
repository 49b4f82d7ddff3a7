"""`serve_with_vastai` in process, against the fake Vast API: the parameters it stores, the
instance it starts with a join token the router knows, the banner, and a clean stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from router.autoscaler.params import EndpointParams
from router.cli.vastai import serve_with_vastai
from router.providers.vastai import VastAIConfig
from router.settings import RouterSettings
from tests.fakes.fake_vastai import FakeVast, served_fake_vast
from tests.ports import free_port


async def test_it_scales_the_endpoint_on_vast_and_stops_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeVast(api_key="vast-key")
    port = free_port()
    settings = RouterSettings(
        port=port,
        state_dir=tmp_path,
        api_key=SecretStr("endpoint-key"),
        admin_key=SecretStr("admin-key"),
    )
    stop = asyncio.Event()
    async with served_fake_vast(fake) as vast_url:
        config = VastAIConfig(api_key="vast-key", template_hash="tmpl-x", base_url=vast_url)
        serving = asyncio.create_task(
            serve_with_vastai(
                settings,
                config,
                policy="default",
                choose_params=lambda stored: stored.model_copy(
                    update={"min_workers": 1, "max_workers": 1, "cold_workers": 0}
                ),
                banner="the banner",
                model_id="org/model",
                stop=stop,
            )
        )
        for _ in range(400):
            if fake.instances or serving.done():
                break
            await asyncio.sleep(0.05)
        [create] = [body for _, path, body in fake.requests if path.startswith("/api/v0/asks")]
        assert create["template_hash_id"] == "tmpl-x"
        assert create["env"]["MODEL_ID"] == "org/model"
        headers = {"Authorization": "Bearer admin-key"}
        async with aiohttp.ClientSession() as http:
            params_url = f"http://127.0.0.1:{port}/autoscaler/params"
            async with http.get(params_url, headers=headers) as response:
                stored = EndpointParams.model_validate(await response.json())
        assert (stored.min_workers, stored.max_workers) == (1, 1)
        stop.set()
        assert await asyncio.wait_for(serving, 30) == 0
    assert len(fake.instances) == 1  # left running
    assert "the banner" in capsys.readouterr().out
