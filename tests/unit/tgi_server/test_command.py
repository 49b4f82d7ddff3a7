"""`tgi-serverless backend`: flags, help, and a light import."""

from __future__ import annotations

import argparse

import pytest

from tests.heavy_libraries import heavy_libraries_loaded_by
from tgi_server import command


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_importing_the_command_does_not_import_torch_or_transformers() -> None:
    assert heavy_libraries_loaded_by("import tgi_server.command") == []


def test_help_teaches_what_it_is_the_environment_and_examples() -> None:
    doc = command.__doc__ or ""
    assert "TGI" in doc
    for name in ("MODEL_ID", "HF_TOKEN", "PORT", "MAX_INPUT_TOKENS", "TGIS_CACHE_DIR"):
        assert name in doc
    assert "Examples:" in doc
    assert "\n" not in command.HELP


def test_only_given_flags_override_the_environment() -> None:
    environ = {"PORT": "6001", "MAX_CONCURRENT_REQUESTS": "7"}
    settings = command.build_settings(
        parse("--max-concurrent-requests", "9", "--json-output"), environ
    )
    assert settings.port == 6001
    assert settings.max_concurrent_requests == 9
    assert settings.json_output is True


def test_all_flags_reach_the_settings() -> None:
    args = parse(
        "--port", "5002", "--host", "0.0.0.0", "--model-id", "org/m",
        "--max-input-tokens", "10", "--max-total-tokens", "20",
    )  # fmt: skip
    settings = command.build_settings(args, {})
    assert (settings.port, settings.host, settings.model_id) == (5002, "0.0.0.0", "org/m")
    assert (settings.max_input_tokens, settings.max_total_tokens) == (10, 20)


def test_bad_limits_stop_with_tgis_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = command.run(parse("--max-input-tokens", "3000", "--max-total-tokens", "2000"))
    assert status == 1
    assert capsys.readouterr().err.strip() == (
        'Error: ArgumentValidation("`max_input_tokens`(3000) must be < `max_total_tokens`(2000)")'
    )


def test_batching_flags_reach_the_settings() -> None:
    args = parse(
        "--max-batch-prefill-tokens", "5000", "--max-batch-total-tokens", "9000",
        "--max-batch-size", "16", "--waiting-served-ratio", "0.5", "--scheduler", "sequential",
    )  # fmt: skip
    settings = command.build_settings(args, {"MAX_WAITING_TOKENS": "7"})
    assert (settings.batch_prefill_tokens, settings.batch_total_tokens) == (5000, 9000)
    assert (settings.max_batch_size, settings.waiting_served_ratio) == (16, 0.5)
    assert (settings.max_waiting_tokens, settings.scheduler) == (7, "sequential")


def test_batch_budgets_default_from_the_token_limits() -> None:
    settings = command.build_settings(
        parse("--max-input-tokens", "8000", "--max-total-tokens", "20000"), {}
    )
    assert settings.batch_prefill_tokens == 8050
    assert settings.batch_total_tokens == 20_000  # TGI's max(16000, total, prefill)


def test_the_batch_defaults_are_tgis_launcher_defaults() -> None:
    settings = command.build_settings(parse(), {})
    assert settings.waiting_served_ratio == 0.3
    assert settings.max_waiting_tokens == 20
    assert settings.batch_prefill_tokens == 4096
    assert settings.batch_total_tokens == 16_000


def test_a_prefill_budget_below_one_prompt_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run(parse("--max-batch-prefill-tokens", "100")) == 1
    assert "`max_batch_prefill_tokens`(100) must be >= `max_input_tokens`(1024)" in (
        capsys.readouterr().err
    )


def test_tgis_model_flags_reach_the_settings() -> None:
    args = parse("--revision", "v2", "--trust-remote-code", "--quantize", "bitsandbytes-nf4")
    settings = command.build_settings(args, {})
    assert (settings.revision, settings.trust_remote_code) == ("v2", True)
    assert settings.quantize == "bitsandbytes-nf4"


def test_tgis_model_flags_are_read_from_tgis_variables() -> None:
    environ = {"REVISION": "v3", "TRUST_REMOTE_CODE": "true", "QUANTIZE": "fp8"}
    settings = command.build_settings(parse(), environ)
    assert (settings.revision, settings.trust_remote_code, settings.quantize) == ("v3", True, "fp8")
    assert command.build_settings(parse(), {}).quantize is None


def test_a_quantize_method_tgi_does_not_know_is_an_argparse_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse("--quantize", "int3")
    assert "invalid choice: 'int3'" in capsys.readouterr().err


def test_flags_this_machine_cannot_honour_stop_before_loading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert command.run(parse("--revision", "v1")) == 1
    err = capsys.readouterr().err
    assert err.startswith('Error: ArgumentValidation("`revision`(v1) selects a revision')
    assert command.run(parse("--model-id", "org/m", "--quantize", "gptq")) == 1
    assert "`quantize`(gptq) is not supported by this backend" in capsys.readouterr().err
