"""Stop criteria: TGI's order (length, eos_token, stop_sequence) and text-based stop matching."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tgi_server.generation.stopping import StoppingCriteria, StopSequenceMatcher

EOS = 2


def test_length_is_reported_when_the_budget_is_used_up() -> None:
    criteria = StoppingCriteria(max_new_tokens=3, eos_token_ids={EOS})
    assert [criteria.check(10, "a"), criteria.check(11, "b"), criteria.check(12, "c")] == [
        None,
        None,
        "length",
    ]
    assert criteria.generated_tokens == 3


def test_eos_stops_the_sequence() -> None:
    criteria = StoppingCriteria(max_new_tokens=10, eos_token_ids={EOS, 7})
    assert criteria.check(5, "x") is None
    assert criteria.check(7, "") == "eos_token"


def test_length_wins_over_eos_on_the_last_allowed_token() -> None:
    criteria = StoppingCriteria(max_new_tokens=1, eos_token_ids={EOS})
    assert criteria.check(EOS, "</s>") == "length"


def test_eos_wins_over_a_stop_sequence() -> None:
    criteria = StoppingCriteria(max_new_tokens=10, eos_token_ids={EOS}, stop_sequences=["</s>"])
    assert criteria.check(EOS, "</s>") == "eos_token"


def test_stop_sequences_match_across_token_boundaries() -> None:
    criteria = StoppingCriteria(max_new_tokens=10, eos_token_ids={EOS}, stop_sequences=["end."])
    texts = ["The e", "n", "d", ".", "x"]
    assert [criteria.check(100 + i, text) for i, text in enumerate(texts)] == [
        None,
        None,
        None,
        "stop_sequence",
        None,
    ]


def test_a_stop_sequence_inside_a_token_does_not_stop_unless_the_text_ends_with_it() -> None:
    matcher = StopSequenceMatcher(["lo"])
    assert not matcher.feed("lol")
    assert matcher.feed(" hello")


def test_no_stop_sequences_never_match() -> None:
    matcher = StopSequenceMatcher([])
    assert not any(matcher.feed(text) for text in ["a", "b", ""])


@given(
    chunks=st.lists(st.text(max_size=6), max_size=20),
    stops=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4),
)
def test_the_matcher_agrees_with_endswith_on_the_whole_text(
    chunks: list[str], stops: list[str]
) -> None:
    matcher = StopSequenceMatcher(stops)
    text = ""
    for chunk in chunks:
        text += chunk
        assert matcher.feed(chunk) == any(text.endswith(stop) for stop in stops)
