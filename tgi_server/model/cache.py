"""How a model's forward takes its KV cache.

transformers 5.2x renamed the forward's `past_key_values` argument to `cache` (the old name
still works but warns on every start, and is due to go in 5.40); older releases know only
`past_key_values`. The runners ask once per model which name it takes. The caches they pass are
`DynamicCache`s, updated in place by the forward, so they keep their own reference and never
read the cache back from the output (whose attribute was renamed too).
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["cache_keyword"]


def cache_keyword(model: Any) -> str:
    """The keyword `model`'s forward takes its KV cache by: `cache`, or `past_key_values`."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # a forward without a signature: the long-standing name
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"
