"""`tgi-serverless router --tls-cert --tls-key` as a real process, with a certificate made at
test time: HTTPS for a client that trusts its CA, nothing for plain HTTP."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.processes import ADMIN_AUTH, ADMIN_KEY, ManagedProcess, router_args, wait_for
from tests.ports import free_port
from tests.tls_certs import make_server_certificate

pytestmark = pytest.mark.e2e


def test_the_router_serves_https_with_the_certificate_it_is_given(tmp_path: Path) -> None:
    made = make_server_certificate(tmp_path)
    port = free_port()
    tls = ["--tls-cert", str(made.cert_file), "--tls-key", str(made.key_file)]
    args = router_args(port, "e2e-tls-api-key", tmp_path / "state", *tls)
    trusted = ssl.create_default_context(cafile=made.ca_file)

    def get(url: str, context: ssl.SSLContext | None = None) -> int:
        request = urllib.request.Request(url, headers=ADMIN_AUTH)
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)

    with ManagedProcess("tls-router", args, {"TGIS_ADMIN_KEY": ADMIN_KEY}, tmp_path) as router:
        url = f"https://127.0.0.1:{port}"
        wait_for("the router", lambda: get(f"{url}/health", trusted) == 200, [router], 60)
        assert get(f"{url}/status", trusted) == 200
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            get(f"{url}/health")  # the system's CAs never signed it
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(f"http://127.0.0.1:{port}/health")
        assert f"router on https://127.0.0.1:{port}" in router.output()
