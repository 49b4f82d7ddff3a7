"""Vast.ai's own PyWorker (the `vastai` package, 1.9.1), configured for a TGI backend the way
Vast's TGI example does, for the compatibility tests. Run it with Vast's environment:

    WORKER_PORT, WORKER_HTTP_PORT, REPORT_ADDR (our router), CONTAINER_ID (an integer),
    PUBLIC_IPADDR + VAST_TCP_PORT_<WORKER_PORT> (its public URL), MASTER_TOKEN (our worker
    token), MODEL_LOG (the backend's log), and MODEL_SERVER_PORT (the backend, on 127.0.0.1)

    python -m tests.e2e.vast_tgi_worker
"""

from __future__ import annotations

import os
from typing import Any

from vastai.serverless.server.worker import (
    BenchmarkConfig,
    HandlerConfig,
    LogActionConfig,
    Worker,
    WorkerConfig,
)

TGI_LOADED = '"message":"Connected","target":"text_generation_router'
TGI_ERRORS = ["Error: WebserverFailed", "Error: DownloadError", "Error: ShardCannotStart"]


def max_new_tokens(payload: dict[str, Any]) -> float:
    return float(payload["parameters"]["max_new_tokens"])


def benchmark_payload() -> dict[str, Any]:
    return {"inputs": "Tell me about the sea", "parameters": {"max_new_tokens": 8}}


def main() -> None:
    config = WorkerConfig(
        model_server_url="http://127.0.0.1",
        model_server_port=int(os.environ["MODEL_SERVER_PORT"]),
        model_log_file=os.environ["MODEL_LOG"],
        model_healthcheck_url="/health",
        handlers=[
            HandlerConfig(
                route="/generate",
                allow_parallel_requests=True,
                max_queue_time=60.0,
                workload_calculator=max_new_tokens,
                benchmark_config=BenchmarkConfig(
                    generator=benchmark_payload, runs=2, concurrency=4
                ),
            ),
            HandlerConfig(
                route="/generate_stream",
                allow_parallel_requests=True,
                max_queue_time=60.0,
                workload_calculator=max_new_tokens,
            ),
        ],
        log_action_config=LogActionConfig(on_load=[TGI_LOADED], on_error=TGI_ERRORS),
    )
    Worker(config).run(host="127.0.0.1")


if __name__ == "__main__":
    main()
