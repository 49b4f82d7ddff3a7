"""Loading the served model: the built-in tiny model by default, and its end-of-sequence ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tgi_server.model.loading import (
    build_engine,
    eos_token_ids,
    fit_to_context,
    load_model,
    model_context,
)
from tgi_server.settings import BackendSettings


def test_without_a_model_id_the_tiny_model_is_served(tgis_cache_dir: Path) -> None:
    loaded = load_model(BackendSettings(cache_dir=tgis_cache_dir, model_id=None))
    assert loaded.model_id == "tiny-llama"
    assert loaded.device.type == "cpu"
    engine = build_engine(loaded)
    assert engine.model.model_id == "tiny-llama"
    assert engine.model.codec.encode("a")[0] == loaded.tokenizer.bos_token_id
    assert not engine.running


def test_a_local_folder_can_be_given_as_model_id(tiny_model_path: Path) -> None:
    loaded = load_model(BackendSettings(model_id=str(tiny_model_path)))
    assert loaded.model_id == str(tiny_model_path)


CUSTOM_CODE = """
from transformers import LlamaConfig, LlamaForCausalLM


class CustomConfig(LlamaConfig):
    model_type = "tgis-custom-llama"


class CustomForCausalLM(LlamaForCausalLM):
    config_class = CustomConfig
"""


def test_a_model_with_its_own_code_loads_only_with_trust_remote_code(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """A model whose config names its own classes (`auto_map`, a model type transformers does
    not know) loads with `--trust-remote-code` and is refused by transformers without it."""
    folder = tmp_path / "custom"
    shutil.copytree(tiny_model_path, folder)
    (folder / "custom_llama.py").write_text(CUSTOM_CODE)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "tgis-custom-llama"
    config["auto_map"] = {
        "AutoConfig": "custom_llama.CustomConfig",
        "AutoModelForCausalLM": "custom_llama.CustomForCausalLM",
    }
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_model(BackendSettings(model_id=str(folder)))
    loaded = load_model(BackendSettings(model_id=str(folder), trust_remote_code=True))
    assert type(loaded.model).__name__ == "CustomForCausalLM"


def test_eos_ids_merge_the_generation_config_and_the_tokenizer(
    tiny_model: Any, tiny_tokenizer: Any
) -> None:
    end_of_turn = tiny_tokenizer.convert_tokens_to_ids("<|end|>")
    assert eos_token_ids(tiny_model, tiny_tokenizer) == {tiny_tokenizer.eos_token_id, end_of_turn}


def test_default_limits_are_lowered_to_fit_a_short_context() -> None:
    fitted = fit_to_context(BackendSettings(), 1024)
    assert (fitted.max_input_tokens, fitted.max_total_tokens) == (1023, 1024)
    roomy = BackendSettings()
    assert fit_to_context(roomy, 4096) is roomy
    assert fit_to_context(roomy, None) is roomy
    kept = fit_to_context(BackendSettings(max_input_tokens=500), 1024)
    assert (kept.max_input_tokens, kept.max_total_tokens) == (500, 1024)


def test_explicit_limits_beyond_the_context_stop_the_start_saying_what_to_pass() -> None:
    with pytest.raises(ValueError, match="pass --max-total-tokens 1024 or less"):
        fit_to_context(BackendSettings(max_total_tokens=3000), 1024)
    with pytest.raises(ValueError, match="pass --max-input-tokens 1023 or less"):
        fit_to_context(BackendSettings(max_input_tokens=1500), 1024)


def test_the_context_comes_from_the_models_config(tiny_model: Any) -> None:
    assert model_context(tiny_model) == 4096
    assert model_context(object()) is None
