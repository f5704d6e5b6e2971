"""Reading the host: processes, links, mounts, iptables; and changing it by pid and by rule.

The decisions (what is ours, what is left) are in `residue`; this module only gathers the texts
and runs the commands, so that `down` and `check-clean` see the same host the same way.
Processes are read through `pytest_medpubsub.processes` (psutil), like everywhere in the harness;
mounts stay the text of /proc/mounts, which `residue` parses (escapes included) and tests as such.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from pytest_medpubsub import processes as running
from pytest_medpubsub.here import residue
from pytest_medpubsub.here.commands import HereError, run
from pytest_medpubsub.here.hostnet import Rule

FAMILIES = ("iptables", "ip6tables")


def processes() -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process on the host (kernel threads have no argv and are skipped)."""
    return [(pid, argv) for pid, argv in running.all_command_lines().items() if argv]


def parents() -> dict[int, int]:
    """pid -> parent pid, for every process (to find a shim's containers)."""
    return running.all_parents()


def descendants(pid: int, parent_of: dict[int, int]) -> list[int]:
    """Every process below `pid`, children before their own children."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [child for child, parent in parent_of.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cluster_processes(markers: Sequence[str]) -> list[tuple[int, list[str]]]:
    return [(pid, argv) for pid, argv in processes() if residue.is_cluster_process(argv, markers)]


def iptables_save(family: str) -> str:
    """The rules of one family, or "" when that family's tools are not there (no IPv6)."""
    if shutil.which(f"{family}-save") is None:
        return ""
    return run([f"{family}-save"], 60, check=False).stdout


def has_chain(table: str, chain: str) -> bool:
    return run(["iptables", "-t", table, "-S", chain], 30, check=False).returncode == 0


def ensure_rule(rule: Rule) -> None:
    """Insert `rule` unless it is there already (a second `up` adds nothing)."""
    if run(["iptables", *rule.args("-C")], 30, check=False).returncode != 0:
        run(["iptables", *rule.args("-I")], 30)


def run_iptables(family: str, commands: Iterable[list[str]]) -> list[str]:
    """Run cleanup commands, carrying on past failures (a rule may vanish meanwhile, when
    kube-proxy's own cleanup raced us); return what failed."""
    failed = []
    for args in commands:
        result = run([family, "-w", "5", *args], 30, check=False)
        if result.returncode != 0:
            failed.append(f"{family} {' '.join(args)}: {result.stderr.strip()}")
    return failed


def links() -> str:
    return run(["ip", "-o", "link"], 30).stdout


def mounts() -> str:
    return Path("/proc/mounts").read_text()


def unmount(point: str) -> None:
    """Unmount, lazily when busy (a dying container may still hold it for a moment)."""
    if run(["umount", point], 30, check=False).returncode != 0:
        run(["umount", "-l", point], 30, check=False)


def remove_tree(path: Path) -> None:
    """Remove `path`; a mount still under it would make rm fail, which is reported."""
    if not path.exists() and not path.is_symlink():
        return
    try:
        shutil.rmtree(path)
    except OSError as error:
        raise HereError(f"could not remove {path}: {error}") from None


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def socket_answers(socket: Path) -> bool:
    if not socket.is_socket():
        return False
    try:
        return (
            subprocess.run(
                ["ctr", "-a", str(socket), "version"],
                capture_output=True,
                timeout=10,
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
