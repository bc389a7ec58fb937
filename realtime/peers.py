"""
Who is at the other end of a socket, by address, and how many sockets each
address holds open in this process.

The client address is the connection's peer, unless that peer is a proxy
listed in REALTIME["TRUSTED_PROXIES"] (addresses or networks): then it is the
right-most address of `X-Forwarded-For` that is not itself a trusted proxy
(the left-most one when all are). A client cannot forge its way past the
proxies: whatever it puts in the header is left of what they add.

`AddressSlots` caps the open sockets per client address
(REALTIME["MAX_SOCKETS_PER_IP"]; None or 0: no cap). The count is per
process: behind N processes an address may hold up to N times the cap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from .conf import realtime_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """`10.0.0.1`, `10.0.0.0/8`, `::1` -> networks (a bad entry raises ValueError)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def is_trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """Every value of a header, joined with commas (HTTP's own rule)."""
    values = [v.decode("latin1") for k, v in scope.get("headers", []) if k.lower() == name]
    return ", ".join(values) if values else None


def client_address(scope: Mapping[str, Any]) -> str | None:
    """The client's IP address for this connection (None if the server gave none)."""
    client = scope.get("client")
    peer = str(client[0]) if client else None
    trusted = parse_networks(tuple(realtime_settings.TRUSTED_PROXIES or ()))
    if peer is None or not trusted or not is_trusted(peer, trusted):
        return peer
    forwarded = header(scope, b"x-forwarded-for")
    if not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


class AddressSlots:
    """Open sockets per client address in this process."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def claim(self, address: str, limit: int) -> bool:
        """Count one more socket for `address`, unless it already holds `limit`."""
        held = self.counts.get(address, 0)
        if held >= limit:
            return False
        self.counts[address] = held + 1
        return True

    def release(self, address: str) -> None:
        held = self.counts.get(address, 0) - 1
        if held > 0:
            self.counts[address] = held
        else:
            self.counts.pop(address, None)


address_slots = AddressSlots()
