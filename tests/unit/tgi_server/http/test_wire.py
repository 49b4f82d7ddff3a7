"""TGI's JSON bodies and headers: key order, omitted keys, f32 floats, nulls."""

from __future__ import annotations

import dataclasses
import json
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.sse import encode_json_event
from protocol.tgi import GenerateResponse, StreamResponse
from tgi_server.generation.events import Completion, GeneratedToken, PrefillToken, TokenEvent
from tgi_server.http.wire import (
    derived_compute_type,
    dumps,
    f32,
    generate_body,
    generate_headers,
    stream_event_body,
    stream_event_bytes,
)
from tgi_server.service import FinishedSequence, GenerateResult
from tgi_server.validation import SamplingParams, ValidatedRequest

HELLO = GeneratedToken(id=7, text=" Hello", logprob=-0.53, special=False)
EOS = GeneratedToken(id=2, text="</s>", logprob=-0.1, special=True)
COMPLETION = Completion(
    generated_text=" Hello",
    finish_reason="eos_token",
    generated_tokens=2,
    seed=None,
    input_length=3,
    prefill=(PrefillToken(1, "<s>", None), PrefillToken(9, "Hi", -2.5)),
    queued_at=10.0,
    started_at=10.25,
    finished_at=11.25,
)
REQUEST = ValidatedRequest(
    inputs="Hi!", input_ids=(1, 9, 3), sampling=SamplingParams(), max_new_tokens=5
)


def result(
    request: ValidatedRequest = REQUEST, others: tuple[FinishedSequence, ...] = ()
) -> GenerateResult:
    best = FinishedSequence((HELLO, EOS), ((HELLO,), (EOS, HELLO)), COMPLETION)
    return GenerateResult(request, best, others, received_at=9.5, validated_at=9.75)


def test_details_are_omitted_unless_asked_for() -> None:
    body = generate_body(result())
    assert body == {"generated_text": " Hello"}
    assert dumps(body) == '{"generated_text":" Hello"}'


def test_details_keys_are_in_tgis_order() -> None:
    body = generate_body(result(dataclasses.replace(REQUEST, details=True)))
    assert list(body) == ["generated_text", "details"]
    assert list(body["details"]) == [
        "finish_reason",
        "generated_tokens",
        "seed",
        "prefill",
        "tokens",
    ]
    assert body["details"]["tokens"][0] == {
        "id": 7,
        "text": " Hello",
        "logprob": -0.53,
        "special": False,
    }
    assert body["details"]["prefill"][0] == {"id": 1, "text": "<s>", "logprob": None}
    GenerateResponse.model_validate_json(dumps(body))


def test_decoder_input_details_alone_also_gives_details() -> None:
    body = generate_body(result(dataclasses.replace(REQUEST, decoder_input_details=True)))
    assert body["details"]["prefill"][1] == {"id": 9, "text": "Hi", "logprob": -2.5}


def test_top_tokens_and_best_of_sequences_follow_tokens() -> None:
    loser = FinishedSequence((HELLO,), ((),), dataclasses.replace(COMPLETION, seed=5))
    request = dataclasses.replace(REQUEST, details=True, top_n_tokens=1, best_of=2)
    details = generate_body(result(request, (loser,)))["details"]
    assert list(details)[-2:] == ["best_of_sequences", "top_tokens"]
    assert [len(step) for step in details["top_tokens"]] == [1, 2]
    assert list(details["best_of_sequences"][0]) == [
        "generated_text",
        "finish_reason",
        "generated_tokens",
        "seed",
        "prefill",
        "tokens",
    ]
    assert details["best_of_sequences"][0]["seed"] == 5


def test_stream_events_omit_empty_top_tokens_and_carry_the_text_at_the_end() -> None:
    middle = stream_event_body(TokenEvent(1, HELLO), details=True)
    assert dumps(middle) == (
        '{"index":1,"token":{"id":7,"text":" Hello","logprob":-0.53,"special":false},'
        '"generated_text":null,"details":null}'
    )
    last = TokenEvent(2, EOS, (EOS,), COMPLETION)
    with_details = stream_event_body(last, details=True)
    assert list(with_details) == ["index", "token", "top_tokens", "generated_text", "details"]
    assert with_details["details"] == {
        "finish_reason": "eos_token",
        "generated_tokens": 2,
        "seed": None,
        "input_length": 3,
    }
    assert stream_event_body(last, details=False)["details"] is None
    StreamResponse.model_validate_json(dumps(with_details))


def test_timing_headers() -> None:
    headers = generate_headers(result(), "cpu")
    assert headers["x-compute-type"] == "cpu"
    assert headers["x-compute-characters"] == "3"
    assert headers["x-validation-time"] == "250"
    assert headers["x-queue-time"] == "250"
    assert headers["x-inference-time"] == "1000"
    assert headers["x-time-per-token"] == "500"
    assert headers["x-prompt-tokens"] == "3"
    assert headers["x-generated-tokens"] == "2"
    assert int(headers["x-total-time"]) >= 0
    assert float(headers["x-compute-time"]) >= 0


def test_non_ascii_text_is_written_raw() -> None:
    assert dumps({"text": "café 🙂"}) == '{"text":"café 🙂"}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-0.5299999713897705, -0.53),
        (0.0, 0.0),
        (-math.inf, None),
        (math.nan, None),
        (None, None),
        (-1e300, None),
    ],
)
def test_floats_are_written_as_f32(value: float | None, expected: float | None) -> None:
    assert f32(value) == expected


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_f32_rounding_keeps_the_single_precision_value(value: float) -> None:
    written = f32(value)
    assert written is not None
    assert json.loads(json.dumps(written)) == written
    assert f32(written) == written
    assert math.isclose(written, value, rel_tol=1e-6, abs_tol=1e-45)


def reference_f32(value: float) -> float | None:
    """The definition `f32` must meet: the fewest significant digits that read back as the
    same float32 (None when the value is not a finite float32)."""
    if not math.isfinite(value):
        return None
    try:
        packed = struct.pack("<f", value)
    except OverflowError:
        return None
    single = struct.unpack("<f", packed)[0]
    for digits in range(1, 10):
        candidate = float(f"{single:.{digits}g}")
        if packs_as(candidate) == packed:
            return candidate
    return float(single)


def packs_as(value: float) -> bytes | None:
    try:
        return struct.pack("<f", value)
    except OverflowError:  # rounds beyond the largest float32
        return None


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_f32_is_the_shortest_decimal_that_reads_back_as_the_same_float32(value: float) -> None:
    expected = reference_f32(value)
    assert repr(f32(value)) == repr(expected)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_f32_of_every_float32_bit_pattern_matches_the_reference(bits: int) -> None:
    value = struct.unpack("<f", struct.pack("<I", bits))[0]
    assert repr(f32(value)) == repr(reference_f32(value))


def test_f32_edges() -> None:
    assert f32(3.5e38) is None  # beyond the largest float32
    assert f32(3.4028235e38) == 3.4028235e38
    assert f32(-0.53) == -0.53
    assert f32(1e-45) == 1e-45


TEXTS = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "\n", '"quoted"', "back\\slash", "\u2028", "é", "\U0001f600", "\x00\x1f"]
)


@given(
    index=st.integers(min_value=1, max_value=10**6),
    token_id=st.integers(min_value=0, max_value=2**31),
    text=TEXTS,
    logprob=st.floats(allow_nan=True, allow_infinity=True),
    special=st.booleans(),
    details=st.booleans(),
)
def test_the_fast_stream_event_is_byte_for_byte_the_general_one(
    index: int, token_id: int, text: str, logprob: float, special: bool, details: bool
) -> None:
    event = TokenEvent(index, GeneratedToken(token_id, text, logprob, special))
    expected = encode_json_event(stream_event_body(event, details=details))
    assert stream_event_bytes(event, details=details) == expected


@pytest.mark.parametrize(
    "event",
    [
        TokenEvent(1, HELLO, top_tokens=(HELLO, EOS)),
        TokenEvent(2, EOS, completion=COMPLETION),
    ],
)
def test_stream_events_with_top_tokens_or_a_completion_take_the_general_path(
    event: TokenEvent,
) -> None:
    for details in (False, True):
        expected = encode_json_event(stream_event_body(event, details=details))
        assert stream_event_bytes(event, details=details) == expected
        assert StreamResponse.model_validate_json(expected[len(b"data: ") :].strip())


def test_compute_type_is_tgis_launcher_value_on_a_gpu_and_the_device_elsewhere() -> None:
    assert derived_compute_type("cuda", "NVIDIA A10G") == "1-nvidia-a10g"
    assert derived_compute_type("cuda", "NVIDIA H200 NVL") == "1-nvidia-h200-nvl"
    assert derived_compute_type("cuda", None) == "gpu+optimized"
    assert derived_compute_type("cpu", None) == "cpu"
    assert derived_compute_type("mps", None) == "mps"
