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


# Header bytes that are not UTF-8 reach the router as surrogates: they must compare too.
secrets = st.text(
    st.sampled_from(["a", "k", "\u00e9", "\U0001f600", "\udcff", "\ud800"]), max_size=4
)


@given(presented=secrets, expected=secrets.filter(bool))
def test_any_two_texts_compare_and_only_equal_ones_match(presented: str, expected: str) -> None:
    assert same_secret(presented, expected) == (presented == expected)
