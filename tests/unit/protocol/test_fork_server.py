"""The fork server's wire: status lines round-trip, and anything else is refused."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.fork_server import Exited, Spawned, SpawnRequest, encode_status, parse_status


@given(st.integers(min_value=1, max_value=2**22), st.integers(min_value=-64, max_value=255))
def test_status_lines_round_trip(pid: int, returncode: int) -> None:
    for message in (Spawned(pid=pid), Exited(returncode=returncode)):
        line = encode_status(message)
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert parse_status(line) == message


@pytest.mark.parametrize(
    "line",
    [b"", b"{}", b'{"kind": "spawned", "pid": 0}', b'{"kind": "exited"}', b'{"kind": "x"}', b"[1]"],
)
def test_anything_else_is_not_a_status_line(line: bytes) -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_status(line)


def test_a_request_names_a_command() -> None:
    assert SpawnRequest(argv=["backend", "--port", "5001"]).argv[0] == "backend"
    for argv in ([], ["x"] * 257):
        with pytest.raises(pydantic.ValidationError):
            SpawnRequest(argv=argv)
    with pytest.raises(pydantic.ValidationError):
        SpawnRequest.model_validate({"argv": ["backend"], "env": {"HF_TOKEN": "x"}})
