from __future__ import annotations

import pytest

from router.state.sealing import Sealer, SealError

SECRET = "s" * 32


def test_a_sealed_value_opens_with_the_same_secret_only() -> None:
    sealed = Sealer(SECRET).seal(b"private key")
    assert b"private key" not in sealed
    assert Sealer(SECRET).open(sealed) == b"private key"
    with pytest.raises(SealError):
        Sealer("t" * 32).open(sealed)


def test_an_altered_value_is_refused() -> None:
    sealed = bytearray(Sealer(SECRET).seal(b"private key"))
    sealed[-1] ^= 1
    with pytest.raises(SealError):
        Sealer(SECRET).open(bytes(sealed))


def test_the_same_value_seals_differently_each_time() -> None:
    sealer = Sealer(SECRET)
    assert sealer.seal(b"x") != sealer.seal(b"x")


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 characters"):
        Sealer("short")
