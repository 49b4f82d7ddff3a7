from __future__ import annotations

import pytest

from pyworker.settings import WorkerSettings, public_url_from_env
from pyworker.tickets import TicketScheme


def test_public_url_from_vast_variables() -> None:
    env = {"PUBLIC_IPADDR": "1.2.3.4", "VAST_TCP_PORT_3000": "41234"}
    assert public_url_from_env(env, 3000) == "http://1.2.3.4:41234"


def test_no_public_url_without_both_variables() -> None:
    assert public_url_from_env({"PUBLIC_IPADDR": "1.2.3.4"}, 3000) == ""


def test_vast_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_PORT", "3100")
    monkeypatch.setenv("REPORT_ADDR", "http://a:8080/, http://b:8080")
    monkeypatch.setenv("CONTAINER_ID", "42")
    settings = WorkerSettings()
    assert settings.port == 3100
    assert settings.report_addresses == ["http://a:8080", "http://b:8080"]
    assert settings.worker_id == "42"
    assert settings.advertised_url == "http://127.0.0.1:3100"


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_PORT", "3100")
    assert WorkerSettings(port=3200).port == 3200


def test_vast_names_choose_scheme_tls_log_and_unsecured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGIS_TICKET_SCHEME", "vast-url")
    monkeypatch.setenv("UNSECURED", "true")
    monkeypatch.setenv("USE_SSL", "true")
    monkeypatch.setenv("MODEL_LOG", "/workspace/infer.log")
    monkeypatch.setenv("TGIS_MAX_QUEUE_TIME", "12.5")
    settings = WorkerSettings()
    assert settings.ticket_scheme is TicketScheme.VAST_URL
    assert settings.ticket_scheme.keys_path == "/pubkey/"
    assert settings.unsecured
    assert settings.model_log == "/workspace/infer.log"
    assert settings.max_queue_time_s == 12.5
    assert settings.advertised_url == "https://127.0.0.1:3000"
    assert (settings.ssl_cert, settings.ssl_key) == ("/etc/instance.crt", "/etc/instance.key")


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="ticket_scheme"):
        WorkerSettings(ticket_scheme="md5")


def test_the_public_url_is_https_with_tls() -> None:
    env = {"PUBLIC_IPADDR": "1.2.3.4", "VAST_TCP_PORT_3000": "41234"}
    assert public_url_from_env(env, 3000, use_ssl=True) == "https://1.2.3.4:41234"
