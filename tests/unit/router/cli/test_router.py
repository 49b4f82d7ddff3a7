"""`tgi-serverless router`: its settings come from the environment, the flags given over them."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import SecretStr

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
    settings = router.build_settings(parse("--port", "9100"), environ)
    assert settings.port == 9100
    assert settings.api_key == SecretStr("env-key")
    assert (settings.state_dir, settings.no_worker_reply) == (tmp_path, "retry")


def test_every_flag_reaches_its_setting(tmp_path: Path) -> None:
    args = parse(
        "--port", "9200", "--host", "0.0.0.0", "--api-key", "k", "--endpoint", "chat",
        "--admin-key", "a", "--ticket-scheme", "vast", "--state-dir", str(tmp_path),
        "--route-timeout", "3",
    )  # fmt: skip
    settings = router.build_settings(args, {})
    assert (settings.port, settings.host, settings.endpoint) == (9200, "0.0.0.0", "chat")
    assert (settings.api_key, settings.admin_key) == (SecretStr("k"), SecretStr("a"))
    assert (settings.ticket_scheme, settings.state_dir) == ("vast", tmp_path)
    assert settings.route_timeout_s == 3


def test_keys_are_generated_when_none_is_set() -> None:
    settings = router.build_settings(parse(), {})
    assert len(settings.api_key.get_secret_value()) >= 24
    assert len(settings.admin_key.get_secret_value()) >= 24
    assert settings.api_key != settings.admin_key


def test_what_up_adds_wins_over_the_environment() -> None:
    environ = {"TGIS_ACCEPT_UNKNOWN_WORKERS": "true"}
    settings = router.build_settings(parse(), environ, accept_unknown_workers=False)
    assert settings.accept_unknown_workers is False
