"""summary.json as a model: files of earlier versions read back and write out byte for byte,
and a run's sections are there only when the run made them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.bench.summary import BenchSummary
from tests.unit.client.bench.documents import SUMMARIES, stored


@pytest.mark.parametrize("path", sorted(SUMMARIES.glob("*.json")), ids=lambda path: path.stem)
def test_a_stored_summary_reads_back_and_writes_the_same_bytes(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert BenchSummary.model_validate_json(text).dumps() == text


def test_each_kind_of_run_has_its_own_sections_and_no_other() -> None:
    def sections(name: str) -> list[str]:
        return list(json.loads(stored(name).dumps()))[10:]

    assert sections("concurrency.json") == []
    assert sections("step.json") == ["phases"]
    assert sections("scale-from-zero.json") == ["phases", "scenario", "workers"]
    assert sections("router-rate.json") == ["phases", "workers"]
    assert sections("sweep.json") == ["sweep", "sweep_stopped"]


def test_figures_read_by_attribute_are_those_of_the_file() -> None:
    summary = stored("step.json")
    raw = json.loads((SUMMARIES / "step.json").read_text(encoding="utf-8"))
    assert summary.schema_name == raw["schema"] == "tgi-serverless-bench/1"
    assert summary.summary.ttft.p99_ms == raw["summary"]["ttft"]["p99_ms"]
    assert summary.phases is not None
    assert [p.rate for p in summary.phases] == [p["rate"] for p in raw["phases"]] == [4, 10]
    assert isinstance(summary.phases[0].rate, int)  # written as it was given


def test_an_older_summary_has_no_preempted_count_and_writes_none() -> None:
    summary = stored("before-preempted.json")
    assert [h.preempted_per_s for h in summary.client.health] == [None]
    assert "preempted_per_s" not in summary.dumps()


def test_a_section_added_later_is_written_after_the_others() -> None:
    summary = stored("step.json")
    workers = stored("router-rate.json").workers
    assert workers is not None
    document = json.loads(summary.with_workers(workers).dumps())
    assert list(document)[-2:] == ["phases", "workers"]
    assert document["workers"]["timeline"][0] == {"t": 0.0, "states": {"ready": 1}, "ok": True}
