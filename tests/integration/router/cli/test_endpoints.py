"""`tgi-serverless endpoints ...` against a real router app on a socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.http.app import create_app
from router.settings import RouterSettings
from tgi_serverless.cli import main

ADMIN_KEY = "cli-admin-key"

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def router_url(aiohttp_server: ServerFactory, tmp_path: Path) -> str:
    settings = RouterSettings(api_key="k", admin_key=ADMIN_KEY, state_dir=tmp_path)
    server = await aiohttp_server(create_app(settings))
    return str(server.make_url("")).rstrip("/")


async def cli(
    capsys: pytest.CaptureFixture[str], router_url: str, *args: str, key: str = ADMIN_KEY
) -> tuple[int, Any, str]:
    argv = ["endpoints", "--router", router_url, "--admin-key", key, *args]
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


async def test_create_list_update_delete(
    capsys: pytest.CaptureFixture[str], router_url: str
) -> None:
    code, created, _ = await cli(
        capsys,
        router_url,
        "create", "chat",
        "--set", "max_workers=3",
        "--set", "cold_workers=1",
        "--set", "target_util=0.75",
        "--backend", "tgi",
        "--model-id", "org/model",
        "--launch-arg=--max-batch-total-tokens=4096",
    )  # fmt: skip
    assert code == 0
    endpoint = created["endpoint"]
    assert (endpoint["max_workers"], endpoint["target_util"]) == (3, 0.75)
    assert endpoint["template"]["launch_args"] == ["--max-batch-total-tokens=4096"]
    assert endpoint["api_key"]
    code, listed, _ = await cli(capsys, router_url, "list")
    assert sorted(e["name"] for e in listed["endpoints"]) == ["chat", "default"]
    code, updated, _ = await cli(capsys, router_url, "update", "chat", "--state", "suspended")
    assert updated["endpoint"]["endpoint_state"] == "suspended"
    code, group, _ = await cli(
        capsys, router_url, "groups", "create", "g1", "--endpoint", "chat", "--set", "gpu_ram=80"
    )
    assert group["workergroup"]["gpu_ram"] == 80
    code, deleted, _ = await cli(capsys, router_url, "delete", "chat")
    assert deleted == {"deleted": "chat", "workergroups": ["g1"]}


async def test_errors_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], router_url: str
) -> None:
    code, _, err = await cli(capsys, router_url, "create", "x", "--set", "target_util=2")
    assert code == 1
    assert "422" in err
    assert "target_util" in err
    assert "valid range" in err
    code, _, err = await cli(capsys, router_url, "list", key="wrong")
    assert (code, "401" in err) == (1, True)
    code, _, err = await cli(capsys, "http://127.0.0.1:9", "list")
    assert code == 1
    assert "cannot reach" in err
    code, _, err = await cli(capsys, router_url, "create", "x", "--set", "novalue")
    assert code == 1
    assert "NAME=VALUE" in err


async def test_the_admin_key_comes_from_tgis_admin_key_only(
    capsys: pytest.CaptureFixture[str], router_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["endpoints", "--router", router_url, "list"]
    monkeypatch.setenv("TGIS_ROUTER_PORT", "99999")  # the router's, invalid: not read here
    monkeypatch.setenv("tgis_admin_key", ADMIN_KEY)
    monkeypatch.setenv("ADMIN_KEY", ADMIN_KEY)
    assert await asyncio.to_thread(main, argv) == 1
    assert "no admin key" in capsys.readouterr().err
    monkeypatch.setenv("TGIS_ADMIN_KEY", ADMIN_KEY)
    assert await asyncio.to_thread(main, argv) == 0
    assert "default" in capsys.readouterr().out


async def test_join_token_prints_a_token_a_worker_registers_with_once(
    capsys: pytest.CaptureFixture[str], router_url: str
) -> None:
    argv = ["endpoints", "--router", router_url, "--admin-key", ADMIN_KEY, "join-token"]
    assert await asyncio.to_thread(main, [*argv, "default", "--worker-id", "w1"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("tgis-join-")
    assert "\n" not in token  # the token alone, for TGIS_JOIN_TOKEN=$(...)
    report = {"id": "w1", "url": "http://w1.example.com:9", "state": "ready"}
    async with aiohttp.ClientSession() as session:
        for expected in (200, 401):  # once only
            async with session.post(
                f"{router_url}/worker_status/",
                json=report,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == expected
    assert await asyncio.to_thread(main, [*argv, "nope"]) == 1
    assert "no endpoint named 'nope'" in capsys.readouterr().err


async def test_keys_are_listed_rotated_and_revoked(
    capsys: pytest.CaptureFixture[str], router_url: str
) -> None:
    code, listed, _ = await cli(capsys, router_url, "keys", "list")
    [first] = [key["kid"] for key in listed["keys"]]
    code, rotated, _ = await cli(capsys, router_url, "keys", "rotate")
    assert (code, rotated["published"]) == (0, [first, rotated["kid"]])
    code, revoked, _ = await cli(capsys, router_url, "keys", "revoke", first)
    assert (code, revoked["kid"], revoked["published"]) == (0, first, [rotated["kid"]])
    code, listed, _ = await cli(capsys, router_url, "keys", "list")
    assert [key["kid"] for key in listed["keys"]] == [rotated["kid"]]
    code, _, err = await cli(capsys, router_url, "keys", "revoke", first)
    assert (code, "409" in err, "revoked already" in err) == (1, True, True)
