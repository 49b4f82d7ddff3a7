"""`tgi-serverless router`: its settings come from the environment, the flags given over them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from router.cli import router


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    router.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_given_win_and_flags_not_given_leave_the_environment(tmp_path: Path) -> None:
    environ = {
        "TGIS_ROUTER_PORT": "9000",
        "TGIS_API_KEY": "env-key",
        "TGIS_STATE_DIR": str(tmp_path),
        "TGIS_NO_WORKER_REPLY": "retry",
    }
    settings, _ = router.build_settings(parse("--port", "9100"), environ)
    assert settings.port == 9100
    assert settings.api_key == SecretStr("env-key")
    assert (settings.state_dir, settings.no_worker_reply) == (tmp_path, "retry")


def test_every_flag_reaches_its_setting(tmp_path: Path) -> None:
    args = parse(
        "--port", "9200", "--host", "0.0.0.0", "--api-key", "k", "--endpoint", "chat",
        "--admin-key", "a", "--ticket-scheme", "vast", "--state-dir", str(tmp_path),
        "--route-timeout", "3", "--public-status", "--metrics-address", "127.0.0.1:9300",
        "--tls-cert", "cert.pem", "--tls-key", "key.pem",
    )  # fmt: skip
    settings, _ = router.build_settings(args, {})
    assert (settings.port, settings.host, settings.endpoint) == (9200, "0.0.0.0", "chat")
    assert (settings.api_key, settings.admin_key) == (SecretStr("k"), SecretStr("a"))
    assert (settings.ticket_scheme, settings.state_dir) == ("vast", tmp_path)
    assert settings.route_timeout_s == 3
    assert settings.public_status is True
    assert settings.metrics_host_port == ("127.0.0.1", 9300)
    assert (settings.tls_cert, settings.tls_key) == (Path("cert.pem"), Path("key.pem"))
    assert settings.scheme == "https"


def test_a_flag_not_given_leaves_public_status_to_the_environment() -> None:
    settings, _ = router.build_settings(parse(), {"TGIS_PUBLIC_STATUS": "true"})
    assert settings.public_status is True
    settings, _ = router.build_settings(parse(), {})
    assert settings.public_status is False


def test_keys_are_generated_when_none_is_set_and_only_those_are_printed() -> None:
    settings, generated = router.build_settings(parse(), {})
    assert generated == {"api_key", "admin_key"}
    assert len(settings.api_key.get_secret_value()) >= 24
    assert len(settings.admin_key.get_secret_value()) >= 24
    assert settings.api_key != settings.admin_key
    printed = "\n".join(router.generated_key_lines(settings, generated))
    assert settings.api_key.get_secret_value() in printed
    assert settings.admin_key.get_secret_value() in printed


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["--api-key", "flag-api-key"], {"TGIS_ADMIN_KEY": "env-admin-key"}),
        (["--admin-key", "flag-admin-key"], {"TGIS_API_KEY": "env-api-key"}),
    ],
)
def test_a_key_given_by_flag_or_environment_is_never_printed(
    argv: list[str], environ: dict[str, str]
) -> None:
    settings, generated = router.build_settings(parse(*argv), environ)
    assert generated == frozenset()
    assert router.generated_key_lines(settings, generated) == []


def test_only_the_key_generated_is_printed() -> None:
    settings, generated = router.build_settings(parse(), {"TGIS_API_KEY": "env-api-key"})
    assert generated == {"admin_key"}
    [line] = router.generated_key_lines(settings, generated)
    assert settings.admin_key.get_secret_value() in line
    assert "env-api-key" not in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metrics-address", "nowhere"], "metrics_address"),
        (["--metrics-address", "127.0.0.1:99999"], "1 to 65535"),
    ],
)
def test_a_malformed_metrics_address_is_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        router.build_settings(parse(*argv), {})


def test_what_up_adds_wins_over_the_environment() -> None:
    environ = {"TGIS_ACCEPT_UNKNOWN_WORKERS": "true"}
    settings, _ = router.build_settings(parse(), environ, accept_unknown_workers=False)
    assert settings.accept_unknown_workers is False


def test_state_takes_a_redis_url_and_needs_the_state_secret() -> None:
    secret = {"TGIS_STATE_SECRET": "s" * 32}
    settings, _ = router.build_settings(parse("--state", "redis://10.0.0.5:6379/2"), secret)
    assert settings.state_url == "redis://10.0.0.5:6379/2"
    in_memory, _ = router.build_settings(parse(), {})
    assert in_memory.state_url is None
    with pytest.raises(ValidationError, match="TGIS_STATE_SECRET"):
        router.build_settings(parse("--state", "redis://10.0.0.5:6379/2"), {})
    with pytest.raises(ValidationError, match="state_url"):
        router.build_settings(parse("--state", "memcached://x"), secret)
