"""The host's network as the cluster sees it: the uplink and its address, and the iptables
rules `up` adds (pure parsing and rule lists; the commands are run elsewhere).

The uplink is looked up at run time from the default route: the guards keep the cluster's
service and pod addresses off it, so nothing addressed to them leaves the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_medpubsub.here.configs import BRIDGE, CLUSTER_CIDRS

COMMENT = "medpubsub-here"


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    spec: tuple[str, ...]

    def args(self, action: str) -> list[str]:
        """`iptables` arguments to -C(heck), -I(nsert) or -D(elete) this rule."""
        return ["-t", self.table, action, self.chain, *self.spec]


def default_route_device(ip_route_text: str) -> str | None:
    """The device of the default route in `ip -o -4 route show default` output."""
    for line in ip_route_text.splitlines():
        words = line.split()
        if words[:1] == ["default"] and "dev" in words:
            return words[words.index("dev") + 1]
    return None


def first_address(ip_addr_text: str) -> str | None:
    """The first IPv4 address in `ip -o -4 addr show dev DEV` output, without its prefix."""
    for line in ip_addr_text.splitlines():
        words = line.split()
        if "inet" in words:
            return words[words.index("inet") + 1].split("/")[0]
    return None


def guard_rules(uplink: str) -> list[Rule]:
    """Drop anything for the cluster's CIDRs that would leave through the uplink. In mangle
    POSTROUTING, after routing: in filter OUTPUT it would also catch host-to-ClusterIP traffic
    before kube-proxy's DNAT has rewritten it."""
    return [
        Rule("mangle", "POSTROUTING", ("-o", uplink, "-d", cidr, *_tag(), "-j", "DROP"))
        for cidr in CLUSTER_CIDRS
    ]


def docker_user_rules() -> list[Rule]:
    """Docker sets FORWARD's policy to DROP; DOCKER-USER is where it lets others accept."""
    return [
        Rule("filter", "DOCKER-USER", (direction, BRIDGE, *_tag(), "-j", "ACCEPT"))
        for direction in ("-i", "-o")
    ]


def _tag() -> tuple[str, ...]:
    # A comment on every rule we add, so that `down` and `check-clean` recognise them.
    return ("-m", "comment", "--comment", COMMENT)
