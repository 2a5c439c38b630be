"""Network namespaces joined to the host by veth pairs: several sites on one machine.

Each site gets a namespace with its own interface and address; its node reaches the
gateway on the host side of its veth pair, over a real (virtual) link, never loopback.
Creating them needs root and a kernel that allows namespaces; :func:`available` says.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["NetSite", "available", "sites"]


@dataclass(frozen=True)
class NetSite:
    name: str
    ns: str
    host_ip: str
    """The host end of the veth pair: where this site reaches the gateway."""
    ns_ip: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def available() -> tuple[bool, str]:
    """Whether namespaces can be made here, and if not, the kernel's answer."""
    probe = f"chprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.CalledProcessError) as exc:
        return False, getattr(exc, "stderr", b"").decode(errors="replace").strip() or str(exc)
    _ip("netns", "del", probe)
    return True, ""


@contextlib.contextmanager
def sites(names: list[str]) -> Iterator[dict[str, NetSite]]:
    """One namespace per name, each on its own /30 (10.231.N.0), removed afterwards."""
    tag = uuid.uuid4().hex[:5]
    made: list[NetSite] = []
    try:
        for i, name in enumerate(names):
            ns, host_if, ns_if = f"ch-{tag}-{i}", f"chh{tag}{i}", f"chn{tag}{i}"
            site = NetSite(name=name, ns=ns, host_ip=f"10.231.{i}.1", ns_ip=f"10.231.{i}.2")
            _ip("netns", "add", ns)
            made.append(site)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("addr", "add", f"{site.host_ip}/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("-n", ns, "addr", "add", f"{site.ns_ip}/30", "dev", ns_if)
            _ip("-n", ns, "link", "set", ns_if, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield {s.name: s for s in made}
    finally:
        for i, site in enumerate(made):
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                _ip("link", "del", f"chh{tag}{i}")  # removes both ends
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                _ip("netns", "del", site.ns)
