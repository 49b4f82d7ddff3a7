"""A worker URL is scheme, host and port only, on a public address unless the endpoint allows
private ones."""

from __future__ import annotations

import pytest

from router.routing.worker_url import WorkerUrlError, check_worker_url

PRIVATE = [
    "http://127.0.0.1:9",
    "http://127.1:9",
    "http://2130706433:9",
    "http://0x7f000001:9",
    "http://0.0.0.0:9",
    "http://10.0.0.1",
    "http://172.16.5.4:80",
    "http://192.168.1.1:80",
    "http://100.64.0.1:80",
    "http://169.254.169.254",
    "http://[::1]:9",
    "http://[fe80::1]:9",
    "http://[fc00::1]:9",
    "http://[::ffff:10.0.0.1]:9",
    "http://[2002:7f00:1::1]:9",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a00:1]:9",  # NAT64 around 10.0.0.1
    "http://224.0.0.1:9",
    "http://localhost:9",
    "http://LOCALHOST.:9",
    "http://api.localhost:9",
]

MALFORMED = [
    "",
    "w.example.com:9",
    "ftp://w.example.com",
    "http://",
    "http://:9",
    "http://w.example.com:9/generate",
    "http://w.example.com:9//",
    "http://w.example.com:9?",
    "http://w.example.com:9?x=1",
    "http://w.example.com:9#",
    "http://user:pw@w.example.com:9",
    "http://@w.example.com:9",
    "http://w.example.com:0",
    "http://w.example.com:",
    "http://w.example.com:99999",
    "http://w.example.com:9x",
    "http://w example.com:9",
    "http://w.example.com\\@evil:9",
    "http://wé.example.com",
    "http://w%2e.example.com",
    "http://999.1.1.1",
]


@pytest.mark.parametrize(
    "url",
    [
        "http://w.example.com",
        "https://w.example.com:8443",
        "http://w.example.com:9/",
        "http://203.0.114.7:40001",
        "http://[2606:4700::1111]:80",
    ],
)
def test_public_worker_urls_pass(url: str) -> None:
    check_worker_url(url, allow_private=False)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_addresses_need_the_endpoints_leave(url: str) -> None:
    with pytest.raises(WorkerUrlError, match="allow_private_workers"):
        check_worker_url(url, allow_private=False)
    check_worker_url(url, allow_private=True)


@pytest.mark.parametrize("url", MALFORMED)
def test_anything_but_scheme_host_and_port_is_refused_everywhere(url: str) -> None:
    with pytest.raises(WorkerUrlError, match="worker url"):
        check_worker_url(url, allow_private=True)
