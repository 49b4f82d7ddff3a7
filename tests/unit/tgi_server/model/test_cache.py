"""The runners pass the KV cache by the keyword the model's forward takes."""

from __future__ import annotations

import inspect
from typing import Any

from tgi_server.model.cache import cache_keyword


class OldModel:
    def forward(self, input_ids: Any = None, past_key_values: Any = None) -> None: ...


class NewModel:
    def forward(self, input_ids: Any = None, cache: Any = None, **kwargs: Any) -> None: ...


def test_a_model_that_takes_cache_gets_cache() -> None:
    assert cache_keyword(NewModel()) == "cache"


def test_an_older_model_gets_past_key_values() -> None:
    assert cache_keyword(OldModel()) == "past_key_values"


def test_the_tiny_model_gets_the_name_its_forward_declares(tiny_model: Any) -> None:
    declared = inspect.signature(tiny_model.forward).parameters
    expected = "cache" if "cache" in declared else "past_key_values"
    assert cache_keyword(tiny_model) == expected
    assert expected in declared
