"""`tgi-serverless worker`: its settings come from the environment, the flags given over them."""

from __future__ import annotations

import argparse
import socket

from pyworker import command


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
