from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.credentials import master_token, same_secret


def test_master_token() -> None:
    assert master_token({"id": 4242, "mtoken": "secret"}) == "secret"
    assert master_token({"mtoken": 5}) == ""
    assert master_token([]) == ""


def test_an_empty_expected_secret_matches_nothing() -> None:
    assert not same_secret("", "")
    assert same_secret("k", "k")
    assert not same_secret("k", "K")


@given(body=st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8)))
def test_master_token_is_the_mtoken_string_or_empty(body: dict[str, object]) -> None:
    assert master_token(body) in ("", body.get("mtoken"))
