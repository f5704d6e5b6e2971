"""The uplink and the host's address, found at run time, and the rules `up` adds to iptables."""

from __future__ import annotations

import pytest

from pytest_medpubsub.here import hostnet


@pytest.mark.parametrize(
    ("text", "device"),
    [
        ("default via 192.0.2.1 dev eth0 proto dhcp src 192.0.2.2 metric 100", "eth0"),
        ("default via 10.0.0.1 dev ens5 \ndefault via 10.1.0.1 dev wlan0 metric 600", "ens5"),
        ("10.0.0.0/24 dev ens5 proto kernel scope link", None),
        ("", None),
    ],
)
def test_the_uplink_is_the_default_routes_device(text: str, device: str | None) -> None:
    assert hostnet.default_route_device(text) == device


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft",
            "192.0.2.2",
        ),
        ("2: ens5    inet 10.0.0.9/16 scope global ens5\n2: ens5    inet 10.0.0.10/16", "10.0.0.9"),
        ("", None),
    ],
)
def test_the_hosts_address_is_the_uplinks_first_ipv4(text: str, address: str | None) -> None:
    assert hostnet.first_address(text) == address


def test_the_guards_drop_cluster_addresses_leaving_through_the_uplink_after_routing() -> None:
    rules = hostnet.guard_rules("ens5")
    assert [rule.args("-I") for rule in rules] == [
        [
            "-t",
            "mangle",
            "-I",
            "POSTROUTING",
            "-o",
            "ens5",
            "-d",
            cidr,
            "-m",
            "comment",
            "--comment",
            "medpubsub-here",
            "-j",
            "DROP",
        ]
        for cidr in ("10.96.0.0/12", "10.244.0.0/16")
    ]


def test_dockers_forward_drop_lets_the_bridges_traffic_through() -> None:
    rules = hostnet.docker_user_rules()
    assert {rule.chain for rule in rules} == {"DOCKER-USER"}
    assert [rule.spec[:2] for rule in rules] == [("-i", "cni0"), ("-o", "cni0")]
    assert all(rule.spec[-2:] == ("-j", "ACCEPT") for rule in rules)
