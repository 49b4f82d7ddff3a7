from __future__ import annotations

from router.routing.backplane import EndpointView, WorkerView
from router.vast.wire import endpoint_id, endpoint_record, numeric_id, worker_record


def test_ids_are_stable_positive_integers() -> None:
    assert numeric_id("4242") == 4242
    assert numeric_id("worker-a") == numeric_id("worker-a") != numeric_id("worker-b")
    assert 0 < numeric_id("worker-a") < 2**31
    assert endpoint_id("default") != numeric_id("default")


def test_an_endpoint_record_has_what_vasts_client_reads() -> None:
    view = EndpointView("chat", "k", 1700000000.0, {"max_workers": 4, "unrelated": 1})
    record = endpoint_record(view)
    required = {"id", "endpoint_name", "api_key", "user_id", "created_at"}
    assert required <= record.keys()
    assert (record["endpoint_name"], record["api_key"], record["max_workers"]) == ("chat", "k", 4)
    assert "unrelated" not in record


def test_a_worker_record_uses_vasts_status_names() -> None:
    view = WorkerView("w1", "http://w1", "ready", 50.0, 12.0, 1700000000.0)
    record = worker_record(view)
    assert (record["status"], record["name"], record["perf"]) == ("IDLE", "w1", 50.0)
    assert isinstance(record["id"], int)
