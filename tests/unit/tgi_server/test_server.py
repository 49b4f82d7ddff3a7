"""The backend process's own set-up."""

from __future__ import annotations

import gc

from tgi_server import server


def test_what_loading_made_is_left_out_of_later_collections() -> None:
    loaded = [{"layer": i} for i in range(10_000)]  # stands in for a model's objects
    try:
        server._freeze_the_heap()
        assert gc.get_freeze_count() >= len(loaded)
        assert len(gc.get_objects(generation=2)) < len(loaded)  # a full collection skips them
    finally:
        gc.unfreeze()
