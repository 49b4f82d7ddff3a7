"""The routes besides /generate: compat `POST /`, /invocations, /tokenize, /ping, /v1/models,
/metrics."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.tgi_server.conftest import BackendClient, MakeClient

PROMPT = "The ferry crossed"


async def generated(client: BackendClient, max_new_tokens: int = 4) -> dict[str, Any]:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": max_new_tokens}}
    response = await client.post("/generate", json=body)
    assert response.status == 200
    payload: dict[str, Any] = await response.json()
    return payload


async def test_compat_answers_a_list_with_the_generated_text_alone(client: BackendClient) -> None:
    # huggingface_hub >= 0.34 posts to `POST /` without `return_full_text`: its users (and
    # outlines') expect the generated text alone, not the prompt before it.
    plain = await generated(client)
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4}}
    response = await client.post("/", json=body)
    assert response.status == 200
    assert response.headers["x-generated-tokens"] == "4"
    assert await response.json() == [plain]


async def test_compat_keeps_an_explicit_return_full_text(client: BackendClient) -> None:
    plain = await generated(client)
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4, "return_full_text": True}}
    response = await client.post("/invocations", json=body)
    assert await response.json() == [{"generated_text": PROMPT + plain["generated_text"]}]


async def test_tgis_own_default_is_a_setting(make_client: MakeClient) -> None:
    client = await make_client(compat_return_full_text=True)
    plain = await generated(client)
    response = await client.post("/", json={"inputs": PROMPT, "parameters": {"max_new_tokens": 4}})
    assert await response.json() == [{"generated_text": PROMPT + plain["generated_text"]}]


async def test_compat_stream_is_sse_with_the_generated_text_last(client: BackendClient) -> None:
    plain = await generated(client)
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 4}, "stream": True}
    response = await client.post("/", json=body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    raw = await response.read()
    events = [json.loads(frame.removeprefix(b"data: ")) for frame in raw.strip().split(b"\n\n")]
    assert [event["index"] for event in events] == [1, 2, 3, 4]
    assert events[-1]["generated_text"] == plain["generated_text"]


async def test_compat_rejects_a_stream_flag_that_is_not_a_bool(client: BackendClient) -> None:
    body = {"inputs": PROMPT, "stream": "yes"}
    response = await client.post("/", json=body)
    assert response.status == 422
    assert (await response.json())["error_type"] == "validation"


async def test_tokenize_lists_ids_texts_and_byte_offsets(client: BackendClient) -> None:
    inputs = "héllo world"
    response = await client.post("/tokenize", json={"inputs": inputs})
    assert response.status == 200
    tokens = await response.json()
    assert tokens[0]["text"] == ""  # BOS
    encoded = inputs.encode("utf-8")
    for token in tokens[1:]:
        assert list(token) == ["id", "text", "start", "stop"]
        assert encoded[token["start"] : token["stop"]].decode() == token["text"]
    assert tokens[-1]["stop"] == len(encoded)
    truncated = await client.post(
        "/tokenize", json={"inputs": inputs, "parameters": {"truncate": 2}}
    )
    assert await truncated.json() == tokens[-2:]


async def test_ping_and_root_are_health(client: BackendClient) -> None:
    for path in ("/ping", "/", "/health"):
        response = await client.get(path)
        assert response.status == 200
        assert await response.read() == b""


async def test_models_lists_the_served_model(client: BackendClient) -> None:
    response = await client.get("/v1/models")
    assert await response.json() == {
        "object": "list",
        "data": [{"id": "tiny-llama", "object": "model", "created": 0, "owned_by": "tiny-llama"}],
    }


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_metrics_count_requests_outcomes_and_tokens(client: BackendClient) -> None:
    await generated(client, max_new_tokens=3)
    bad = await client.post("/generate", json={"inputs": PROMPT, "parameters": {"top_p": 1.0}})
    assert bad.status == 422
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert sample(text, "tgi_request_count_total") == 2
    assert sample(text, "tgi_request_success_total") == 1
    assert 'tgi_request_failure_total{err="validation"} 1.0' in text
    assert sample(text, "tgi_request_generated_tokens_sum") == 3
    assert sample(text, "tgi_queue_size") == 0
    assert "tgi_request_inference_duration_bucket" in text


async def test_metrics_count_batches_like_tgi(client: BackendClient) -> None:
    await generated(client, max_new_tokens=3)  # one prefill, then two decode steps
    text = await (await client.get("/metrics")).text()
    assert sample(text, "tgi_request_max_new_tokens_sum") == 3
    assert 'tgi_batch_inference_count_total{method="prefill"} 1.0' in text
    assert 'tgi_batch_inference_count_total{method="decode"} 2.0' in text
    assert 'tgi_batch_inference_success_total{method="decode"} 2.0' in text
    assert 'tgi_batch_inference_failure_total{method="prefill"} 0.0' in text
    assert 'tgi_batch_concat_total{reason="backpressure"} 0.0' in text
    assert sample(text, "tgi_batch_current_max_tokens") == 0  # the batch has drained
    assert sample(text, "tgi_batch_max_total_tokens") == 16_000


TGI_METRICS = {
    # every name in TGI's metrics table (tgi_api.md §5.3), with its Prometheus type
    "tgi_request_count": "counter",
    "tgi_request_success": "counter",
    "tgi_request_failure": "counter",
    "tgi_request_duration": "histogram",
    "tgi_request_validation_duration": "histogram",
    "tgi_request_queue_duration": "histogram",
    "tgi_request_inference_duration": "histogram",
    "tgi_request_mean_time_per_token_duration": "histogram",
    "tgi_request_input_length": "histogram",
    "tgi_request_max_new_tokens": "histogram",
    "tgi_request_generated_tokens": "histogram",
    "tgi_request_skipped_tokens": "histogram",
    "tgi_queue_size": "gauge",
    "tgi_batch_current_size": "gauge",
    "tgi_batch_current_max_tokens": "gauge",
    "tgi_batch_max_total_tokens": "gauge",
    "tgi_batch_next_size": "histogram",
    "tgi_batch_inference_count": "counter",
    "tgi_batch_inference_success": "counter",
    "tgi_batch_inference_failure": "counter",
    "tgi_batch_inference_duration": "histogram",
    "tgi_batch_forward_duration": "histogram",
    "tgi_batch_decode_duration": "histogram",
    "tgi_batch_filter_duration": "histogram",
    "tgi_batch_concat": "counter",
    "tgi_batch_concat_duration": "histogram",
}


async def test_metrics_expose_every_name_tgi_lists(client: BackendClient) -> None:
    text = await (await client.get("/metrics")).text()
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE "))
    # prometheus-client writes a counter's name with `_total` (TGI's exporter does not)
    exposed = {name: types.get(name, types.get(f"{name}_total")) for name in TGI_METRICS}
    assert exposed == TGI_METRICS
    assert "tgi_request_count_total" in types


async def test_metrics_time_each_batch_step_by_method(client: BackendClient) -> None:
    await generated(client, max_new_tokens=3)  # one prefill, then two decode steps
    text = await (await client.get("/metrics")).text()
    for phase in ("forward", "decode", "filter", "inference"):
        name = f"tgi_batch_{phase}_duration"
        assert f'{name}_count{{method="prefill"}} 1.0' in text
        assert f'{name}_count{{method="decode"}} 2.0' in text
        assert f'{name}_bucket{{le="+Inf",method="decode"}} 2.0' in text
    forward = sample(text, 'tgi_batch_forward_duration_sum{method="prefill"}')
    inference = sample(text, 'tgi_batch_inference_duration_sum{method="prefill"}')
    assert 0 < forward <= inference
    assert sample(text, "tgi_batch_next_size_count") == 1
    assert sample(text, "tgi_batch_next_size_sum") == 1
    assert 'tgi_batch_next_size_bucket{le="1.0"} 1.0' in text
    assert sample(text, "tgi_request_skipped_tokens_count") == 1
    assert sample(text, "tgi_request_skipped_tokens_sum") == 0
