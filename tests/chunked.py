"""Reading HTTP/1.1 chunked framing in tests."""

from __future__ import annotations


def unchunk(data: bytes) -> bytes:
    """The body of HTTP/1.1 chunked framing, up to the final zero-size chunk or the end of
    `data`; every chunk must be whole and end with CRLF."""
    body, rest = bytearray(), bytes(data)
    while rest:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        body += rest[:size]
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]
    return bytes(body)
