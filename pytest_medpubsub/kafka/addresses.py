"""This machine's own non-loopback address: the one pods of a cluster on this machine dial to
reach a broker on the host (loopback inside a pod is the pod itself)."""

from __future__ import annotations

import ipaddress
import socket

# A TEST-NET-2 address (RFC 5737): connecting a UDP socket only asks the kernel for the route and
# its source address; no packet is sent, so nothing leaves this machine.
_ROUTE_PROBE = ("198.51.100.1", 9)


def host_address() -> str | None:
    """The IPv4 source address of the default route, or None when there is only loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(_ROUTE_PROBE)
        except OSError:
            return None  # no route at all
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address
