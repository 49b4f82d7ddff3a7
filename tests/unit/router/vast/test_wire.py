from __future__ import annotations

from router.routing.backplane import EndpointView, WorkerView
from router.vast.wire import endpoint_id, endpoint_record, numeric_id, worker_record


def test_ids_are_stable_positive_integers() -> None:
    assert numeric_id("4242") == 4242
    assert numeric_id("worker-a") == numeric_id("worker-a") != numeric_id("worker-b")
    assert 0 < numeric_id("worker-a") < 2**31
    assert endpoint_id("default") != numeric_id("default")


def test_any_name_has_an_id() -> None:
    """Found by fuzzing (fuzz/regressions/vast): a worker id the status model accepts broke
    every `/get_endpoint_workers/` answer of its endpoint. "²" is a digit to `str.isdigit` but
    not to `int`; a lone surrogate (Python's json reads `"\\ud800"`) has no UTF-8 form; and a
    name in other scripts' digits ("١٢") took the id of the ASCII name ("12")."""
    for name in ("\u00b2", "w\ud800", "\u0661\u0662"):
        assert 0 <= numeric_id(name) < 2**31
    assert numeric_id("\u0661\u0662") != numeric_id("12")


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
