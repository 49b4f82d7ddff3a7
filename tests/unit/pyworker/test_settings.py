"""PyWorker settings: Vast's variable names, flags over environment, the advertised URL."""

from __future__ import annotations

import pytest

from pyworker.settings import WorkerSettings
from pyworker.tickets.verifier import TicketScheme

VAST_ADDRESS = {"PUBLIC_IPADDR": "1.2.3.4", "VAST_TCP_PORT_3000": "41234"}


def test_the_public_url_comes_from_vasts_variables() -> None:
    settings = WorkerSettings.from_environment(VAST_ADDRESS)
    assert settings.advertised_url == "http://1.2.3.4:41234"


def test_vasts_public_port_is_the_one_for_this_workers_port() -> None:
    environ = {**VAST_ADDRESS, "VAST_TCP_PORT_22": "40022", "WORKER_PORT": "3000"}
    assert WorkerSettings.from_environment(environ).advertised_url == "http://1.2.3.4:41234"
    moved = WorkerSettings.from_environment(environ, port=3100)
    assert moved.advertised_url == "http://127.0.0.1:3100"


def test_no_vast_url_without_both_variables() -> None:
    for name in VAST_ADDRESS:
        one = {name: VAST_ADDRESS[name]}
        assert WorkerSettings.from_environment(one).advertised_url == "http://127.0.0.1:3000"


def test_the_vast_url_is_https_with_tls() -> None:
    settings = WorkerSettings.from_environment({**VAST_ADDRESS, "USE_SSL": "true"})
    assert settings.advertised_url == "https://1.2.3.4:41234"


def test_a_public_url_wins_over_vasts_variables() -> None:
    environ = {**VAST_ADDRESS, "TGIS_PUBLIC_URL": "https://worker.example/"}
    assert WorkerSettings.from_environment(environ).advertised_url == "https://worker.example"


def test_vast_names_are_read_from_the_environment() -> None:
    environ = {
        "WORKER_PORT": "3100",
        "REPORT_ADDR": "http://a:8080/, http://b:8080",
        "CONTAINER_ID": "42",
    }
    settings = WorkerSettings.from_environment(environ)
    assert settings.port == 3100
    assert settings.report_addresses == ["http://a:8080", "http://b:8080"]
    assert settings.worker_id == "42"
    assert settings.advertised_url == "http://127.0.0.1:3100"


def test_flags_win_over_the_environment() -> None:
    assert WorkerSettings.from_environment({"WORKER_PORT": "3100"}, port=3200).port == 3200


def test_vast_names_choose_scheme_tls_log_and_unsecured() -> None:
    environ = {
        "TGIS_TICKET_SCHEME": "vast-url",
        "UNSECURED": "true",
        "USE_SSL": "true",
        "MODEL_LOG": "/workspace/infer.log",
        "TGIS_MAX_QUEUE_TIME": "12.5",
    }
    settings = WorkerSettings.from_environment(environ)
    assert settings.ticket_scheme is TicketScheme.VAST_URL
    assert settings.ticket_scheme.keys_path == "/pubkey/"
    assert settings.unsecured
    assert settings.model_log == "/workspace/infer.log"
    assert settings.max_queue_time_s == 12.5
    assert settings.advertised_url == "https://127.0.0.1:3000"
    assert (settings.ssl_cert, settings.ssl_key) == ("/etc/instance.crt", "/etc/instance.key")


def test_settings_built_directly_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_PORT", "3100")
    assert WorkerSettings().port == 3000


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="ticket_scheme"):
        WorkerSettings(ticket_scheme="md5")


def test_keys_are_polled_at_least_every_minute() -> None:
    # How long a revoked key still verifies: the security model promises a minute at most.
    assert WorkerSettings(key_poll_interval_s=60).key_poll_interval_s == 60
    with pytest.raises(ValueError, match=r"key_poll_interval_s|TGIS_KEY_POLL_INTERVAL_S"):
        WorkerSettings(key_poll_interval_s=61)


def test_one_join_token_for_every_router_or_one_per_router() -> None:
    routers = "http://a:1, http://b:2"
    assert WorkerSettings(report_addr=routers, join_token="t").join_tokens == ["t"]
    both = WorkerSettings(report_addr=routers, join_token="ta, tb")
    assert both.join_tokens == ["ta", "tb"]
    with pytest.raises(ValueError, match="3 tokens for 2 REPORT_ADDR routers"):
        WorkerSettings(report_addr=routers, join_token="ta,tb,tc")
    assert WorkerSettings(report_addr=routers).join_tokens == []
