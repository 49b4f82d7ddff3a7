"""No secret in any log: every key and token the e2e suite hands a process (by flag or by
variable) is remembered, and so is everything each process writes (stdout and stderr); at the
end of the session (`tests/e2e/conftest.py`) no output may hold any of those secrets.

A key a process generated and printed at start is not given to it, so it is not looked for:
printing a key that start made is the one thing allowed. `processes.ManagedProcess` and
`processes.run_command` report here; a test that starts a process another way and hands it a
secret must too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SECRET_FLAGS", "SECRET_VARIABLES", "WATCH", "LeakWatch", "find_leaks", "given_secrets"]

SECRET_FLAGS = frozenset({"--api-key", "--admin-key", "--worker-token", "--join-token"})
SECRET_VARIABLES = frozenset(
    {
        "TGIS_API_KEY",
        "TGIS_ADMIN_KEY",
        "TGIS_WORKER_TOKEN",
        "TGIS_JOIN_TOKEN",
        "MASTER_TOKEN",
        "HF_TOKEN",
    }
)
MIN_LENGTH = 8
"""Shorter values (a test's `wrong`) cannot be told apart from words in a log line."""


def given_secrets(args: Sequence[str], env: Mapping[str, str]) -> set[str]:
    """The secrets in a command line (`--api-key K` or `--api-key=K`) and its added variables."""
    found = {value for flag, value in itertools.pairwise(args) if flag in SECRET_FLAGS}
    for arg in args:
        flag, equals, value = arg.partition("=")
        if equals and flag in SECRET_FLAGS:
            found.add(value)
    found |= {value for name, value in env.items() if name in SECRET_VARIABLES}
    return {secret for secret in found if len(secret) >= MIN_LENGTH}


def find_leaks(outputs: Mapping[str, str], secrets: Iterable[str]) -> list[str]:
    """`name: line` for each line of an output that holds one of `secrets` (the secret itself is
    masked in what is returned, as the report may be logged too)."""
    leaks = []
    for name, text in outputs.items():
        for line in text.splitlines():
            for secret in secrets:
                if secret in line:
                    leaks.append(f"{name}: {line.replace(secret, '<' + secret[:3] + '...>')}")
    return leaks


@dataclass
class LeakWatch:
    """What the session handed out and where the outputs went."""

    secrets: set[str] = field(default_factory=set)
    log_files: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def process(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> str:
        """Remember the secrets a process is given; the unique name its output goes under."""
        self.secrets |= given_secrets(args, env)
        return f"{name}#{len(self.log_files) + len(self.outputs) + 1}"

    def log_file(self, name: str, path: Path) -> None:
        self.log_files[name] = path

    def output(self, name: str, text: str) -> None:
        self.outputs[name] = text

    def leaks(self) -> list[str]:
        texts = dict(self.outputs)
        for name, path in self.log_files.items():
            texts[name] = path.read_text(errors="replace") if path.exists() else ""
        return find_leaks(texts, self.secrets)


WATCH = LeakWatch()
