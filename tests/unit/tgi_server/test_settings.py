"""Backend settings: TGI's variable names, flags over environment, start-up checks."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from tgi_server.settings import BackendSettings


def test_defaults_match_tgis_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "MODEL_ID", "TGIS_BACKEND_HOST", "MAX_INPUT_TOKENS", "TGIS_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = BackendSettings()
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


def test_tgis_environment_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_ID", "org/model")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("PORT", "6001")
    monkeypatch.setenv("TGIS_BACKEND_HOST", "0.0.0.0")
    monkeypatch.setenv("MAX_INPUT_TOKENS", "100")
    monkeypatch.setenv("MAX_TOTAL_TOKENS", "200")
    monkeypatch.setenv("MAX_CONCURRENT_REQUESTS", "3")
    monkeypatch.setenv("JSON_OUTPUT", "true")
    monkeypatch.setenv("TGIS_CACHE_DIR", "/tmp/tgis-test-cache")
    settings = BackendSettings()
    assert settings.model_id == "org/model"
    assert settings.hf_token is not None
    assert settings.hf_token.get_secret_value() == "hf_secret"
    assert "hf_secret" not in repr(settings)
    assert (settings.host, settings.port) == ("0.0.0.0", 6001)
    assert (settings.max_input_tokens, settings.max_total_tokens) == (100, 200)
    assert settings.max_concurrent_requests == 3
    assert settings.json_output is True
    assert settings.cache_dir == Path("/tmp/tgis-test-cache")


def test_hostname_and_host_are_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TGIS_BACKEND_HOST", raising=False)
    monkeypatch.setenv("HOSTNAME", "3f9a2c1b7d4e")
    monkeypatch.setenv("HOST", "3f9a2c1b7d4e")
    assert BackendSettings().host == "127.0.0.1"


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "6001")
    monkeypatch.setenv("MODEL_ID", "org/model")
    settings = BackendSettings(port=7001, model_id="./local")
    assert (settings.port, settings.model_id) == (7001, "./local")


def test_an_empty_model_id_means_the_builtin_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_ID", "  ")
    assert BackendSettings().model_id is None


def test_input_tokens_must_be_below_total_tokens_with_tgis_message() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        BackendSettings(max_input_tokens=2048, max_total_tokens=2048)
    assert "`max_input_tokens`(2048) must be < `max_total_tokens`(2048)" in str(caught.value)
