"""The simulator's trace files: read, scaled, and the errors of a file that cannot be used.
(The CSV layouts themselves are tested in tests/unit/common/test_trace.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.trace import TraceError
from router.simulator.trace import load_trace

TRACES = Path(__file__).resolve().parents[4] / "data" / "traces"


def test_a_trace_file_is_read_with_its_time_scale() -> None:
    path = TRACES / "azure_llm_code_2023.csv"
    trace, faster = load_trace(path), load_trace(path, time_scale=0.5)
    assert (trace.name, len(trace)) == ("azure_llm_code_2023", 8819)
    assert faster.arrival_s == pytest.approx([t / 2 for t in trace.arrival_s])
    assert faster.input_tokens == trace.input_tokens


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the trace"),
        (b"arrival_s,input_tokens,output_tokens\n\xff,1,1\n", "is not UTF-8 text"),
        (b"arrival_s,input_tokens,output_tokens\n1,2\n", "t.csv:2: expected 3 columns"),
    ],
)
def test_a_file_that_cannot_be_used_is_a_trace_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TraceError, match=message):
        load_trace(path)
