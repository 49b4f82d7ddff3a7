"""Tickets across a worker restart, between the real router app and a real PyWorker: the
replay window lives in memory, so what keeps a used ticket from passing again after a
restart is the worker's epoch, which the router signs into its native tickets."""

from __future__ import annotations

from pydantic import SecretStr

from pyworker.app import create_app
from pyworker.state import LIFECYCLE, SETTINGS, VERIFIER
from tests.integration.pyworker.stack import PAYLOAD, ServerFactory, Stack, wait_until
from tests.worker_identity import join_token


async def test_a_ticket_used_before_a_restart_is_refused_after_it(
    stack: Stack, aiohttp_server: ServerFactory
) -> None:
    used = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    assert (await stack.post("/generate", used)).status == 200
    first_epoch = stack.worker.app[VERIFIER].epoch

    settings, port = stack.worker.app[SETTINGS], stack.worker.port
    await stack.worker.close()  # drains, reports `stopped`: its credential ends with it
    token = join_token(stack.router.app, worker_id=settings.worker_id)  # as a provider would
    settings = settings.model_copy(update={"join_token": SecretStr(token)})
    stack.worker = await aiohttp_server(create_app(settings), port=port)
    await wait_until(lambda: stack.worker.app[LIFECYCLE].serving)
    assert stack.worker.app[VERIFIER].epoch != first_epoch
    stack.backend.received.clear()  # forget the start-up benchmark

    replayed = await stack.post("/generate", used)
    assert (replayed.status, (await replayed.json())["reason"]) == (403, "wrong_epoch")
    fresh = {"auth_data": await stack.ticket(), "payload": PAYLOAD}
    assert (await stack.post("/generate", fresh)).status == 200
    assert stack.backend.payloads("/generate") == [PAYLOAD]  # the replay never reached it
    stack.assert_idle()
