"""templates/compose.yaml as Compose reads it, and as this machine runs it without Docker.

`load` reads the YAML (merge keys included) and interpolates variables as Compose does: `$$`,
`$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`.

`HostPlan` turns each service into a process on this machine, changing only where things are:
a service's name becomes 127.0.0.1, each port a service listens on (`expose`, `ports`, a
`--...-port N` flag) becomes a free port of its own, `0.0.0.0` becomes 127.0.0.1, each volume a
folder (a bind-mounted file a rewritten copy), a path of the image this machine has elsewhere
(the image's copy of this repository) that path, and an image's absolute program path the program
of that name on PATH. What the services run, with which flags and variables, is the file's.
"""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "COMPOSE_FILE",
    "REPO",
    "TEMPLATES",
    "HostPlan",
    "HostService",
    "MissingVariable",
    "interpolate",
    "load",
]

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
COMPOSE_FILE = TEMPLATES / "compose.yaml"

_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


class MissingVariable(KeyError):
    """A `${NAME:?message}` whose variable is unset (or empty)."""


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """`value` (a YAML document or part of it) with every string interpolated from `environ`."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, environ), value)
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    return value


def _substitute(match: re.Match[str], environ: Mapping[str, str]) -> str:
    if match[1]:
        return "$"
    name, operator, argument = match[2] or match[5], match[3], match[4] or ""
    value = environ.get(name)
    unset = value is None or (operator is not None and operator.startswith(":") and not value)
    if operator in (":?", "?") and unset:
        raise MissingVariable(f"{name}: {argument}")
    if operator in (":-", "-") and unset:
        return argument
    return value or ""


def load(environ: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    document: dict[str, Any] = interpolate(yaml.safe_load(path.read_text()), environ)
    return document


@dataclass
class HostService:
    name: str
    argv: list[str]
    env: dict[str, str]
    depends_on: dict[str, str]
    """Each service this one waits for, with Compose's condition (`service_healthy`, ...)."""
    healthcheck: list[str] | None = None
    files: dict[Path, str] = field(default_factory=dict)
    """Bind-mounted files, rewritten: write each before the service starts."""


class HostPlan:
    """Every service of `project` (a loaded compose file) as a process on this machine; its
    volumes under `root`, its ports from `free_port`, each of `image_paths` (a folder in the
    images) at its folder here. `edit_file(target, text)` may change a bind-mounted file's text
    further (a shorter scrape interval, say)."""

    def __init__(
        self,
        project: Mapping[str, Any],
        root: Path,
        free_port: Callable[[], int],
        image_paths: Mapping[str, Path] | None = None,
        edit_file: Callable[[str, str], str] = lambda target, text: text,
    ) -> None:
        self._services: dict[str, Any] = dict(project["services"])
        self._root = root
        self._image_paths = dict(image_paths or {})
        self.ports = {
            (name, port): free_port()
            for name, spec in self._services.items()
            for port in sorted(listening_ports(spec))
        }
        """(service, port in its container) -> port on this machine."""
        self.services = {
            name: self._host_service(name, spec, edit_file) for name, spec in self._services.items()
        }

    def url(self, service: str, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[(service, port)]}"

    def rewrite(self, service: str | None, text: str) -> str:
        """`text` as `service` (None: a file no service owns) needs it on this machine."""
        for (name, port), host_port in self.ports.items():
            reference = rf"(?<![\w.-]){re.escape(name)}:{port}(?!\d)"
            text = re.sub(reference, f"127.0.0.1:{host_port}", text)
        for (name, port), host_port in self.ports.items():
            if name == service:
                text = re.sub(rf"(?<![\w.]){port}(?![\w.])", str(host_port), text)
        text = text.replace("0.0.0.0", "127.0.0.1")
        mounts = dict(self._mounts(service)) if service is not None else {}
        mounts.update({target: path for target, path in self._image_paths.items()})
        if mounts:  # in one pass, so that no path is rewritten twice
            targets = "|".join(re.escape(target) for target in sorted(mounts, key=len)[::-1])
            text = re.sub(
                rf"(?<![\w.-])({targets})(?![\w.-])", lambda match: str(mounts[match[1]]), text
            )
        return text

    def _host_service(
        self, name: str, spec: Mapping[str, Any], edit_file: Callable[[str, str], str]
    ) -> HostService:
        entrypoint, command = _as_list(spec.get("entrypoint")), _as_list(spec.get("command"))
        argv = [self.rewrite(name, arg) for arg in entrypoint + command]
        if argv and argv[0].startswith("/"):
            argv[0] = shutil.which(Path(argv[0]).name) or Path(argv[0]).name
        env = {key: self.rewrite(name, value) for key, value in _environment(spec).items()}
        files = {}
        for source, target in _bind_mounts(spec):
            if source.is_file():
                text = self.rewrite(None, source.read_text())
                files[self._mount_path(name, target)] = edit_file(target, text)
        return HostService(
            name=name,
            argv=argv,
            env=env,
            depends_on=_depends_on(spec),
            healthcheck=self._healthcheck(name, spec),
            files=files,
        )

    def _healthcheck(self, name: str, spec: Mapping[str, Any]) -> list[str] | None:
        test = _as_list(spec.get("healthcheck", {}).get("test"))
        if not test or test[0] == "NONE":
            return None
        argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
        return [self.rewrite(name, arg) for arg in argv]

    def _mounts(self, service: str) -> list[tuple[str, Path]]:
        """(path in the container, path here) of each volume."""
        spec = self._services[service]
        return [(target, self._mount_path(service, target)) for _, target in _volumes(spec)]

    def _mount_path(self, service: str, target: str) -> Path:
        for source, mounted in _volumes(self._services[service]):
            if mounted == target:
                if source.startswith((".", "/")):  # a bind mount: its copy, or the folder itself
                    host = (TEMPLATES / source).resolve()
                    return self._root / "files" / service / host.name if host.is_file() else host
                return self._root / "volumes" / source
        raise KeyError(target)


def listening_ports(spec: Mapping[str, Any]) -> set[int]:
    """The ports a service listens on in its container: `expose`, the container side of
    `ports`, and the value of any `--...-port N` flag of its command."""
    ports = {int(str(port)) for port in spec.get("expose", [])}
    ports |= {int(str(mapping).rsplit(":", 1)[-1]) for mapping in spec.get("ports", [])}
    words = [word for arg in _as_list(spec.get("command")) for word in shlex.split(arg)]
    for flag, value in itertools.pairwise(words):
        if flag.startswith("--") and flag.endswith("-port") and value.isdigit():
            ports.add(int(value))
    return ports


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else shlex.split(str(value))


def _environment(spec: Mapping[str, Any]) -> dict[str, str]:
    environment = spec.get("environment", {})
    if isinstance(environment, list):
        return dict(str(item).split("=", 1) for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


def _depends_on(spec: Mapping[str, Any]) -> dict[str, str]:
    depends = spec.get("depends_on", {})
    if isinstance(depends, list):
        return {name: "service_started" for name in depends}
    return {name: str(rule.get("condition", "service_started")) for name, rule in depends.items()}


def _volumes(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each short-syntax volume: a named volume or a bind-mounted path."""
    pairs = []
    for volume in spec.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        pairs.append((source, target))
    return pairs


def _bind_mounts(spec: Mapping[str, Any]) -> list[tuple[Path, str]]:
    return [
        ((TEMPLATES / source).resolve(), target)
        for source, target in _volumes(spec)
        if source.startswith((".", "/"))
    ]
