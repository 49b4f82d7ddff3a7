"""The e2e suite's leak check itself (`tests.e2e.leaks`): it finds what it must, and only that."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.leaks import LeakWatch, find_leaks, given_secrets


def test_secrets_are_taken_from_flags_and_variables() -> None:
    args = ["router", "--api-key", "flag-api-key", "--admin-key=inline-admin-key", "--port", "1"]
    env = {"TGIS_WORKER_TOKEN": "worker-token-1", "TGIS_CACHE_DIR": "/tmp/cache-dir-x"}
    assert given_secrets(args, env) == {"flag-api-key", "inline-admin-key", "worker-token-1"}
    assert given_secrets(["generate", "--api-key", "wrong"], {}) == set()  # too short to tell


def test_a_secret_in_any_output_is_found_and_masked(tmp_path: Path) -> None:
    watch = LeakWatch()
    name = watch.process("router", ["router", "--api-key", "flag-api-key"], {})
    log = tmp_path / "router.log"
    log.write_text("router on http://127.0.0.1:1\nAPI key: flag-api-key\n")
    watch.log_file(name, log)
    watch.output(watch.process("bench", ["bench"], {}), "no secret here\n")
    [leak] = watch.leaks()
    assert leak.startswith(f"{name}: API key: <fla...>")
    assert "flag-api-key" not in leak
    assert find_leaks({"a": "clean\n"}, {"flag-api-key"}) == []
