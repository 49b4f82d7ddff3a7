"""The built-in tiny model: deterministic, cached, safe to build from several processes at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tgi_server.model import tiny
from tgi_server.model.tiny import build_tiny_model, ensure_tiny_model, tiny_model_dir


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_two_builds_write_identical_files(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    build_tiny_model(first)
    build_tiny_model(second)
    built = file_bytes(first)
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= built.keys()
    assert built == file_bytes(second)


def test_the_cached_copy_is_what_a_fresh_build_writes(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    build_tiny_model(tmp_path)
    assert file_bytes(tmp_path) == file_bytes(tiny_model_path)


def test_the_model_is_a_small_llama_with_a_byte_level_tokenizer(tiny_model_path: Path) -> None:
    config = json.loads((tiny_model_path / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["max_position_embeddings"] == 4096
    assert (config["hidden_size"], config["num_hidden_layers"]) == (64, 2)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 2)
    tokenizer = json.loads((tiny_model_path / "tokenizer.json").read_text())
    assert tokenizer["pre_tokenizer"]["type"] == "ByteLevel"
    assert 900 <= len(tokenizer["model"]["vocab"]) <= 1100


def test_special_tokens_and_chat_template(tiny_tokenizer: Any) -> None:
    assert (tiny_tokenizer.bos_token, tiny_tokenizer.eos_token) == ("<s>", "</s>")
    assert tiny_tokenizer.pad_token == "<pad>"
    assert tiny_tokenizer("hi")["input_ids"][0] == tiny_tokenizer.bos_token_id
    prompt = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<s><|user|>\nHello<|end|>\n<|assistant|>\n"
    ids = tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.convert_tokens_to_ids("<|user|>") in ids


def test_every_byte_is_in_the_vocabulary(tiny_tokenizer: Any) -> None:
    text = "naïve café ☕ \U0001f642 \x00\x7f"
    ids = tiny_tokenizer(text)["input_ids"]
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_ensure_builds_once_and_reuses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ensure_tiny_model(tmp_path)
    assert path == tiny_model_dir(tmp_path)

    def must_not_build(folder: Path) -> None:
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(tiny, "build_tiny_model", must_not_build)
    assert ensure_tiny_model(tmp_path) == path


def test_concurrent_first_starts_agree_and_leave_no_staging_folders(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[Exception] = []

    def start() -> None:
        try:
            results.append(ensure_tiny_model(tmp_path))
        except Exception as exc:
            errors.append(exc)
            raise

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(results) == {tiny_model_dir(tmp_path)}
    assert [path.name for path in tmp_path.iterdir()] == [tiny_model_dir(tmp_path).name]


def test_a_build_that_loses_the_race_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = tiny.build_tiny_model

    def build_while_another_process_finishes_first(folder: Path) -> None:
        real_build(folder)
        other = tiny_model_dir(tmp_path)
        other.mkdir()
        real_build(other)
        (other / "marker").write_text("the winner's copy")

    monkeypatch.setattr(tiny, "build_tiny_model", build_while_another_process_finishes_first)
    path = ensure_tiny_model(tmp_path)
    assert (path / "marker").read_text() == "the winner's copy"
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]
