"""Backend settings: TGI's variable names, flags over environment, start-up checks."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from tgi_server.settings import BackendSettings


def test_defaults_match_tgis_launcher() -> None:
    settings = BackendSettings.from_environment({})
    assert settings.model_id is None
    assert (settings.host, settings.port) == ("127.0.0.1", 5001)
    assert (settings.max_input_tokens, settings.max_total_tokens) == (1024, 2048)
    assert settings.max_concurrent_requests == 128
    assert (settings.max_stop_sequences, settings.max_best_of, settings.max_top_n_tokens) == (
        4,
        2,
        5,
    )
    assert settings.cache_dir == Path("~/.cache/tgi-serverless").expanduser()
    assert settings.json_output is False


def test_tgis_environment_names_are_read() -> None:
    environ = {
        "MODEL_ID": "org/model",
        "HF_TOKEN": "hf_secret",
        "PORT": "6001",
        "TGIS_BACKEND_HOST": "0.0.0.0",
        "MAX_INPUT_TOKENS": "100",
        "MAX_TOTAL_TOKENS": "200",
        "MAX_CONCURRENT_REQUESTS": "3",
        "JSON_OUTPUT": "true",
        "TGIS_CACHE_DIR": "/tmp/tgis-test-cache",
    }
    settings = BackendSettings.from_environment(environ)
    assert settings.model_id == "org/model"
    assert settings.hf_token is not None
    assert settings.hf_token.get_secret_value() == "hf_secret"
    assert "hf_secret" not in repr(settings)
    assert (settings.host, settings.port) == ("0.0.0.0", 6001)
    assert (settings.max_input_tokens, settings.max_total_tokens) == (100, 200)
    assert settings.max_concurrent_requests == 3
    assert settings.json_output is True
    assert settings.cache_dir == Path("/tmp/tgis-test-cache")


def test_hf_token_is_preferred_to_the_older_hub_token_as_tgis_router_does() -> None:
    both = {"HF_TOKEN": "new", "HUGGING_FACE_HUB_TOKEN": "old"}
    older = BackendSettings.from_environment({"HUGGING_FACE_HUB_TOKEN": "old"}).hf_token
    newer = BackendSettings.from_environment(both).hf_token
    assert (older, newer) == (pydantic.SecretStr("old"), pydantic.SecretStr("new"))


def test_hostname_and_host_are_never_read() -> None:
    environ = {"HOSTNAME": "3f9a2c1b7d4e", "HOST": "3f9a2c1b7d4e", "host": "3f9a2c1b7d4e"}
    assert BackendSettings.from_environment(environ).host == "127.0.0.1"


def test_flags_win_over_the_environment() -> None:
    environ = {"PORT": "6001", "MODEL_ID": "org/model"}
    settings = BackendSettings.from_environment(environ, port=7001, model_id="./local")
    assert (settings.port, settings.model_id) == (7001, "./local")


def test_an_empty_model_id_means_the_builtin_model() -> None:
    assert BackendSettings.from_environment({"MODEL_ID": "  "}).model_id is None


def test_settings_built_directly_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "6001")
    assert BackendSettings().port == 5001


def test_input_tokens_must_be_below_total_tokens_with_tgis_message() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        BackendSettings(max_input_tokens=2048, max_total_tokens=2048)
    assert "`max_input_tokens`(2048) must be < `max_total_tokens`(2048)" in str(caught.value)
