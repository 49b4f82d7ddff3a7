"""`client.__all__` is the public API: complete, sorted, and every name resolves."""

from __future__ import annotations

import types

import client
import client.errors


def test_all_is_sorted_and_unique() -> None:
    assert client.__all__ == sorted(set(client.__all__))


def test_every_exported_name_exists() -> None:
    missing = [name for name in client.__all__ if not hasattr(client, name)]
    assert missing == []


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name, value in vars(client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(client.__all__)


def test_every_sdk_error_is_exported() -> None:
    errors = {
        name
        for name, value in vars(client.errors).items()
        if isinstance(value, type) and issubclass(value, client.TGISError)
    }
    assert errors <= set(client.__all__)
