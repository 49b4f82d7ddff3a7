"""Loading the served model: the built-in tiny model by default, and its end-of-sequence ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tgi_server.loading import build_engine, eos_token_ids, load_model
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


def test_eos_ids_merge_the_generation_config_and_the_tokenizer(
    tiny_model: Any, tiny_tokenizer: Any
) -> None:
    end_of_turn = tiny_tokenizer.convert_tokens_to_ids("<|end|>")
    assert eos_token_ids(tiny_model, tiny_tokenizer) == {tiny_tokenizer.eos_token_id, end_of_turn}
