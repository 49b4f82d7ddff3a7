"""Summary documents for the bench's tests: summary.json files of earlier versions, and figures
with chosen values."""

from __future__ import annotations

from pathlib import Path

from client.bench.stats import Slo, Window, summarize
from client.bench.summary import BenchSummary, Figures, Goodput, Latency, RequestCounts, Throughput

SUMMARIES = Path(__file__).parent / "summaries"
"""summary.json files written before the summary was a model, one per kind of run, and one
written before `preempted_per_s` was measured."""


def stored(name: str) -> BenchSummary:
    return BenchSummary.model_validate_json((SUMMARIES / name).read_text(encoding="utf-8"))


def latency(p50: float | None, p99: float | None) -> Latency:
    count = 0 if p50 is None else 10
    return Latency(count=count, mean_ms=p50, p50_ms=p50, p90_ms=p99, p95_ms=p99, p99_ms=p99)


def figures(
    ttft_p50: float | None = 100.0,
    rps: float = 10.0,
    *,
    total: int = 10,
    ok: int = 10,
) -> Figures:
    """Figures of a window of `total` requests, `ok` of them answered, at `rps` requests/s."""
    empty = summarize([], Window(0.0, 1.0), Slo())
    return Figures(
        window_s=1.0,
        requests=RequestCounts(
            total=total,
            ok=ok,
            overloaded=0,
            failed=total - ok,
            by_outcome={"ok": ok},
            failed_by_status={},
        ),
        ttft=latency(ttft_p50, 200.0),
        itl=latency(20.0, 30.0),
        tpot=empty.tpot,
        e2e=latency(1000.0, 2000.0),
        dispatch_delay=empty.dispatch_delay,
        route_time=empty.route_time,
        time_to_headers=empty.time_to_headers,
        throughput=Throughput(requests_per_s=rps, output_tokens_per_s=rps * 50, sent_per_s=rps),
        tokens=empty.tokens,
        goodput=Goodput(slo=empty.goodput.slo, requests_per_s=rps, attainment=1.0),
    )
