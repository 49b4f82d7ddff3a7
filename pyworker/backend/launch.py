"""Which backend a worker uses (`--backend embedded|tgi|<URL>`), and how it starts one.

    tgi        text-generation-launcher --model-id "$MODEL_ID" --json-output
                   --port <backend port> --hostname 127.0.0.1 <flags after -->
    embedded   <python> -m tgi_serverless backend --json-output
                   --port <backend port> --host 127.0.0.1 [--model-id ...] <flags after -->
    <URL>      nothing to start: the worker relays to a backend someone else runs

Secrets: the backend's environment is the worker's, less what only the worker may hold (its join
and status tokens). `HF_TOKEN` travels in that environment, never in an argument, so it shows up
in no process listing and no log line. Pure: no I/O; the environment is handed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "BackendChoice",
    "BackendKind",
    "LaunchError",
    "LaunchSpec",
    "backend_environment",
    "launch_spec",
    "parse_backend",
]

TGI_LAUNCHER = "text-generation-launcher"
BACKEND_HOST = "127.0.0.1"

# Only the worker may hold these: the backend (TGI or ours) never needs them.
WORKER_ONLY_VARIABLES = frozenset({"TGIS_JOIN_TOKEN", "TGIS_WORKER_TOKEN", "TGIS_API_KEY"})

# Flags the worker sets itself: given again after `--` they would contradict it.
_OWN_FLAGS = {
    "tgi": ("--model-id", "--port", "--hostname", "--json-output"),
    "embedded": ("--port", "--host", "--json-output"),
}


class LaunchError(ValueError):
    """The backend cannot be started as asked (a missing model id, a flag the worker owns)."""


class BackendKind(Enum):
    TGI = "tgi"
    EMBEDDED = "embedded"
    URL = "url"


@dataclass(frozen=True)
class BackendChoice:
    kind: BackendKind
    url: str = ""  # for BackendKind.URL only

    @property
    def managed(self) -> bool:
        """Whether the worker starts and supervises this backend itself."""
        return self.kind is not BackendKind.URL


@dataclass(frozen=True)
class LaunchSpec:
    """One managed backend: the command to run, and the URL it serves on once loaded."""

    argv: tuple[str, ...]
    url: str


def parse_backend(value: str) -> BackendChoice:
    """`tgi`, `embedded` or an http(s) URL (what the worker did before it could start one)."""
    word = value.strip()
    if word in (BackendKind.TGI.value, BackendKind.EMBEDDED.value):
        return BackendChoice(BackendKind(word))
    if word.startswith(("http://", "https://")):
        return BackendChoice(BackendKind.URL, word.rstrip("/"))
    raise LaunchError(f"--backend must be tgi, embedded or an http(s) URL, not {value!r}")


def launch_spec(
    choice: BackendChoice,
    *,
    model_id: str,
    port: int,
    extra_args: Sequence[str],
    python: str,
) -> LaunchSpec:
    """The command that starts `choice` on 127.0.0.1:`port` with TGI's JSON log lines."""
    if not choice.managed:
        raise LaunchError("a backend given by URL is not started by the worker")
    kind = choice.kind.value
    clashes = [arg for arg in extra_args if arg.split("=", 1)[0] in _OWN_FLAGS[kind]]
    if clashes:
        owned = ", ".join(_OWN_FLAGS[kind])
        raise LaunchError(f"the worker sets {owned} itself; remove {' '.join(clashes)} after --")
    url = f"http://{BACKEND_HOST}:{port}"
    if choice.kind is BackendKind.TGI:
        if not model_id:
            raise LaunchError("--backend tgi needs a model: set MODEL_ID or --model-id")
        argv = [
            TGI_LAUNCHER,
            "--model-id", model_id,
            "--json-output",
            "--port", str(port),
            "--hostname", BACKEND_HOST,
        ]  # fmt: skip
    else:
        argv = [
            python, "-m", "tgi_serverless", "backend",
            "--json-output",
            "--port", str(port),
            "--host", BACKEND_HOST,
        ]  # fmt: skip
        if model_id and not any(arg.split("=", 1)[0] == "--model-id" for arg in extra_args):
            argv += ["--model-id", model_id]
    return LaunchSpec(tuple([*argv, *extra_args]), url)


def backend_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The managed backend's environment: the worker's, less the worker's own credentials.

    `HF_TOKEN` (and TGI's own variables: `QUANTIZE`, `NUM_SHARD`, ...) pass through.
    """
    return {name: value for name, value in environ.items() if name not in WORKER_ONLY_VARIABLES}
