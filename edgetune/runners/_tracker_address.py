"""Where the RPC tracker is: parsed from HOST:PORT, an option or $EDGETUNE_RPC_TRACKER."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Optional

from edgetune.errors import ConfigError

RPC_TRACKER_ENV = "EDGETUNE_RPC_TRACKER"
DEFAULT_TRACKER_PORT = 9190
DEFAULT_SERVER_PORT = 9090
HOW_TO_CONFIGURE = f"pass --rpc-tracker HOST:PORT or set ${RPC_TRACKER_ENV} (see README, 'Profiling a board')"


@dataclass(frozen=True)
class TrackerAddress:
    """The TCP address of a TVM RPC tracker."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "TrackerAddress":
        """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6); a bad value is a ConfigError."""
        host, sep, port = text.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"RPC tracker address must be HOST:PORT (e.g. 127.0.0.1:{DEFAULT_TRACKER_PORT}), got '{text}'")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def resolve_tracker(value: Optional[str] = None) -> Optional[TrackerAddress]:
    """The tracker given as ``value``, else $EDGETUNE_RPC_TRACKER, else None."""
    text = value or os.environ.get(RPC_TRACKER_ENV, "").strip()
    return TrackerAddress.parse(text) if text else None


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps a socket reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: loopback only if every address it resolves to is
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos)


def exposure_notice(host: str, port: int, what: str) -> Optional[str]:
    """The line to print when ``what`` binds to a non-loopback address, or None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"note: the {what} listens on {host}:{port}, reachable from other machines. An RPC server runs "
        "whatever code it is sent and tracker keys are labels, not secrets: use a trusted network only."
    )
