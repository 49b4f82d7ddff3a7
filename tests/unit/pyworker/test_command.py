"""`tgi-serverless worker`: its settings come from the environment, the flags given over them."""

from __future__ import annotations

import argparse
import socket

import pytest

from pyworker import command
from pyworker.backend.launch import LaunchError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_given_win_and_flags_not_given_leave_the_environment() -> None:
    environ = {"WORKER_PORT": "3100", "REPORT_ADDR": "http://r:8080", "TGIS_ENDPOINT": "chat"}
    settings = command.build_settings(parse("--port", "3200", "--endpoint", "llama"), environ)
    assert (settings.port, settings.endpoint) == (3200, "llama")
    assert settings.report_addr == "http://r:8080"


def test_every_flag_reaches_its_setting() -> None:
    args = parse(
        "--port", "3300", "--host", "127.0.0.1", "--backend-url", "http://b:5001",
        "--router", "http://r:8080", "--public-url", "http://w:3300", "--worker-id", "w1",
        "--endpoint", "llama",
    )  # fmt: skip
    settings = command.build_settings(args, {})
    assert (settings.port, settings.host, settings.backend_url) == (
        3300,
        "127.0.0.1",
        "http://b:5001",
    )
    assert (settings.report_addr, settings.advertised_url) == ("http://r:8080", "http://w:3300")
    assert (settings.worker_id, settings.endpoint) == ("w1", "llama")


def test_the_worker_id_is_the_container_id_else_host_and_port() -> None:
    assert command.build_settings(parse(), {"CONTAINER_ID": "42"}).worker_id == "42"
    unnamed = command.build_settings(parse("--port", "3400"), {})
    assert unnamed.worker_id == f"{socket.gethostname()}-3400"


def test_vasts_variables_name_the_advertised_url() -> None:
    environ = {"WORKER_PORT": "3000", "PUBLIC_IPADDR": "1.2.3.4", "VAST_TCP_PORT_3000": "41234"}
    assert command.build_settings(parse(), environ).advertised_url == "http://1.2.3.4:41234"


def test_without_backend_the_worker_relays_to_the_backend_url_as_before() -> None:
    worker = command.plan(parse("--backend-url", "http://b:5001"), {}, "python")
    assert (worker.launch, worker.settings.backend_url) == (None, "http://b:5001")
    by_flag = command.plan(parse("--backend", "http://b:6001"), {}, "python")
    assert (by_flag.launch, by_flag.settings.backend_url) == (None, "http://b:6001")


def test_backend_tgi_starts_the_launcher_for_model_id_and_relays_to_it() -> None:
    environ = {"MODEL_ID": "org/model", "MODEL_LOG": "/workspace/infer.log"}
    args = parse("--backend", "tgi", "--backend-port", "5002", "--", "--quantize", "awq")
    worker = command.plan(args, environ, "python")
    assert worker.launch is not None
    assert worker.launch.argv[:3] == ("text-generation-launcher", "--model-id", "org/model")
    assert worker.launch.argv[-2:] == ("--quantize", "awq")
    assert worker.settings.backend_url == "http://127.0.0.1:5002"
    assert worker.settings.model_log == "/workspace/infer.log"


def test_a_started_backend_logs_to_a_file_even_without_model_log() -> None:
    worker = command.plan(parse("--backend", "embedded"), {}, "python")
    assert worker.settings.model_log.endswith("tgi-serverless-backend-5001.log")


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--backend-url", "http://b:1", "--", "--quantize", "awq"], "--backend tgi"),
        (["--backend", "http://b:1", "--", "--quantize", "awq"], "not a URL"),
        (["--backend", "tgi", "--backend-url", "http://b:1"], "not both"),
        (["--backend", "tgi"], "MODEL_ID"),
    ],
)
def test_what_cannot_run_is_refused_before_anything_starts(argv: list[str], problem: str) -> None:
    with pytest.raises(LaunchError, match=problem):
        command.plan(parse(*argv), {}, "python")
