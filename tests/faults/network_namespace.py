"""A network namespace for one worker, joined to the host by two virtual cables (veth pairs):
the data link, on which clients reach the worker, and the control link, on which the worker
reaches the router. Pulling the control cable (its host end set down) cuts the worker off from
the router alone: its packets to the router are dropped without an answer, as on a partition,
while clients still reach it. Needs root and iproute2; everything is removed on exit."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Namespace", "namespace_unavailable", "network_namespace"]


@dataclass(frozen=True)
class Namespace:
    name: str
    worker_address: str
    """The worker's address on the data link: clients on the host reach it there."""
    router_address: str
    """The host's address on the control link: the worker reaches the router there."""
    control_cable: str
    """The host end of the control link."""

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut_control(self) -> None:
        _ip("link", "set", self.control_cable, "down")

    def restore_control(self) -> None:
        _ip("link", "set", self.control_cable, "up")


def namespace_unavailable() -> str | None:
    """Why a namespace cannot be made here (None when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    return None


@contextlib.contextmanager
def network_namespace() -> Iterator[Namespace]:
    tag = secrets.token_hex(3)
    name = f"tgisf-{tag}"
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}"
    data, control = (f"tfd{tag}", f"tfc{tag}")  # each pair: NAMEh on the host, NAMEn inside
    _ip("netns", "add", name)
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        for cable, host, inside in ((data, 1, 2), (control, 5, 6)):
            _ip("link", "add", f"{cable}h", "type", "veth", "peer", "name", f"{cable}n")
            _ip("link", "set", f"{cable}n", "netns", name)
            _ip("addr", "add", f"{subnet}.{host}/30", "dev", f"{cable}h")
            _ip("link", "set", f"{cable}h", "up")
            inside_cmd = ["netns", "exec", name, "ip"]
            _ip(*inside_cmd, "addr", "add", f"{subnet}.{inside}/30", "dev", f"{cable}n")
            _ip(*inside_cmd, "link", "set", f"{cable}n", "up")
        yield Namespace(name, f"{subnet}.2", f"{subnet}.5", f"{control}h")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        for cable in (data, control):  # gone with the namespace; in case one was left
            subprocess.run(["ip", "link", "del", f"{cable}h"], check=False, capture_output=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)
