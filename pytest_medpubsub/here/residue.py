"""What a cluster leaves on the host, read from the host's own reports (pure, unit-tested).

`check-clean` and `down` both use these: `down` to know what to remove, `check-clean` to list
what is left. Inputs are the texts of `iptables-save`, `ip -o link` and `/proc/mounts`, and
process command lines, so every rule can be tested with a table of examples.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from pytest_medpubsub.here.configs import BRIDGE
from pytest_medpubsub.here.hostnet import COMMENT

# Chains the kubelet, kube-proxy and the CNI plugins create.
OUR_CHAIN_PREFIXES = ("KUBE-", "CNI-")
# Commands only a cluster of ours runs on this machine (argv[0]'s base name).
CLUSTER_COMMANDS = frozenset(
    {
        "kubelet",
        "kube-proxy",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
        "coredns",
        "keda",
    }
)


@dataclass(frozen=True)
class SavedRule:
    table: str
    chain: str
    spec: tuple[str, ...]


@dataclass(frozen=True)
class SavedTables:
    chains: dict[str, tuple[str, ...]]  # table -> chains declared in it
    rules: tuple[SavedRule, ...]


def parse_iptables_save(text: str) -> SavedTables:
    chains: dict[str, list[str]] = {}
    rules: list[SavedRule] = []
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
            chains.setdefault(table, [])
        elif line.startswith(":") and table:
            chains[table].append(line[1:].split()[0])
        elif line.startswith("-A ") and table:
            words = shlex.split(line)
            rules.append(SavedRule(table, words[1], tuple(words[2:])))
    return SavedTables({t: tuple(c) for t, c in chains.items()}, tuple(rules))


def is_our_chain(chain: str) -> bool:
    return chain.startswith(OUR_CHAIN_PREFIXES)


def is_our_rule(rule: SavedRule) -> bool:
    """A rule we added (our comment), one that sends traffic into a chain of ours, or one that
    names the cluster's bridge (the CNI plugin's and kube-proxy's own)."""
    target = _target(rule.spec)
    return (
        COMMENT in rule.spec or (target is not None and is_our_chain(target)) or BRIDGE in rule.spec
    )


def iptables_leftovers(text: str, family: str = "iptables") -> list[str]:
    saved = parse_iptables_save(text)
    found = [
        f"{family} chain {table}/{chain}"
        for table, chains in saved.chains.items()
        for chain in chains
        if is_our_chain(chain)
    ]
    found += [
        f"{family} rule -t {rule.table} -A {rule.chain} {shlex.join(rule.spec)}"
        for rule in saved.rules
        if not is_our_chain(rule.chain) and is_our_rule(rule)
    ]
    return found


def iptables_cleanup(text: str) -> list[list[str]]:
    """The iptables argument lists that remove every rule and chain of ours, in order: the rules
    in other chains first (a chain still referenced cannot be deleted), then flush, then delete."""
    saved = parse_iptables_save(text)
    commands = [
        ["-t", rule.table, "-D", rule.chain, *rule.spec]
        for rule in saved.rules
        if not is_our_chain(rule.chain) and is_our_rule(rule)
    ]
    ours = [
        (table, chain)
        for table, chains in saved.chains.items()
        for chain in chains
        if is_our_chain(chain)
    ]
    commands += [["-t", table, "-F", chain] for table, chain in ours]
    commands += [["-t", table, "-X", chain] for table, chain in ours]
    return commands


def link_leftovers(ip_link_text: str) -> list[str]:
    """`cni0`, and the pods' veth ends still attached to it, from `ip -o link` output."""
    found = []
    for line in ip_link_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 3:
            continue
        name = parts[1].strip().split("@")[0]
        words = parts[2].split()
        master = words[words.index("master") + 1] if "master" in words else None
        if BRIDGE in (name, master):
            found.append(name)
    return found


def mount_leftovers(proc_mounts_text: str, roots: Iterable[PurePath]) -> list[str]:
    """Mount points at or under `roots`, deepest first (the order to unmount them in)."""
    wanted = [str(root).rstrip("/") for root in roots]
    found = []
    for line in proc_mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        point = _unescape(fields[1])
        if any(point == root or point.startswith(root + "/") for root in wanted):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def is_cluster_process(argv: Sequence[str], markers: Iterable[str]) -> bool:
    """A process of a cluster of ours: a cluster command, or one naming our paths (containerd
    with our config, its shims with our socket, the kubelet supervisor)."""
    if not argv:
        return False
    if PurePath(argv[0]).name in CLUSTER_COMMANDS:
        return True
    line = " ".join(argv)
    return any(marker in line for marker in markers)


def _target(spec: Sequence[str]) -> str | None:
    for flag in ("-j", "-g"):
        if flag in spec:
            index = spec.index(flag)
            if index + 1 < len(spec):
                return spec[index + 1]
    return None


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
