"""`python -m pytest_medpubsub.here {up,down,check-clean,load-image,build,strimzi,e2e}`.

`up` prints `kubeconfig=`, `containerd=` and `keda-manifest=` lines for scripts to read. Every
failure is one sentence on stderr: exit 2 for a usage problem (not root), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.here import cluster, e2e, gobuild, images, strimzi, teardown
from pytest_medpubsub.here.commands import HereError
from pytest_medpubsub.here.layout import Layout
from pytest_medpubsub.here.state import ClusterState


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_medpubsub.here",
        description="A single-node kubeadm cluster built on this machine.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="build what is missing, start the cluster (or reuse it)")
    commands.add_parser("down", help="stop the cluster and remove what it changed on the host")
    commands.add_parser("check-clean", help="list anything a cluster left; exit 1 if any")
    commands.add_parser("build", help="build the binaries and images only")
    load = commands.add_parser("load-image", help="load Docker images into the cluster")
    load.add_argument("images", nargs="+", metavar="IMAGE")
    strimzi_cmd = commands.add_parser(
        "strimzi",
        help=f"cache Strimzi {strimzi.VERSION}'s install manifest and images for the cluster here",
        description=(
            f"Cache what the Strimzi stage of e2e installs: Strimzi {strimzi.VERSION}'s own "
            "install/cluster-operator from a checkout (--src), pointed at the images "
            f"{strimzi.OPERATOR_IMAGE} and {strimzi.KAFKA_IMAGE}, which are saved from the "
            "local Docker engine. Exit 2 when something is missing, with what to do."
        ),
    )
    strimzi_cmd.add_argument(
        "--src",
        type=Path,
        help=f"a checkout (or git directory) of Strimzi with tag {strimzi.VERSION}",
    )
    e2e = commands.add_parser("e2e", help="up, the scenarios and chaos on the cluster, down")
    e2e.add_argument("--report", default="build/e2e-report")
    e2e.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    e2e.add_argument(
        "--strimzi-src",
        type=Path,
        help="a Strimzi checkout to (re)write the cached install manifest from first",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print(
            f"`{args.command}` changes the host (iptables, mounts, /etc/kubernetes), "
            "so it must run as root.",
            file=sys.stderr,
        )
        return 2
    layout = Layout.default()
    try:
        return _dispatch(args, layout)
    except strimzi.StrimziMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except HereError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; run `make cluster-here-down` to remove what was started", file=sys.stderr
        )
        return 130


def _dispatch(args: argparse.Namespace, layout: Layout) -> int:
    if args.command == "up":
        result = cluster.up(layout)
        _print_up(result, layout)
        return 0
    if args.command == "down":
        seconds = teardown.down(layout)
        progress.say(f"cluster removed in {seconds:.1f} s (the build cache in {layout.root} stays)")
        return 0
    if args.command == "check-clean":
        return _check_clean(layout)
    if args.command == "build":
        cluster.build(layout)
        return 0
    if args.command == "load-image":
        state = ClusterState.load(layout.state_file)
        socket = state.containerd_socket if state else str(layout.containerd_socket)
        images.load_images(Path(socket), args.images)
        return 0
    if args.command == "strimzi":
        cache = strimzi.ensure(layout, args.src)
        print(f"strimzi-manifest={cache.manifest}")
        for archive in cache.archives:
            print(f"strimzi-image-archive={archive}")
        return 0
    if args.command == "e2e":
        return e2e.run(layout, args.report, keep=args.keep, strimzi_src=args.strimzi_src)
    raise HereError(f"unknown command {args.command}")  # pragma: no cover - argparse checks


def _print_up(result: cluster.UpResult, layout: Layout) -> None:
    how = "reused" if result.reused else "up"
    progress.say(f"cluster {how} in {result.seconds:.1f} s")
    for name, seconds in result.built.items():
        if seconds:
            progress.say(f"  built {name} in {seconds:.1f} s")
    for name, spec in gobuild.COMPONENTS.items():
        record = gobuild.build_record(layout, spec)
        if record:
            resolve, compile_ = record.get("resolve_seconds", 0), record.get("build_seconds", 0)
            progress.say(
                f"  {name} {spec.version}: cached (its cold build: resolve {resolve:.0f} s, "
                f"build {compile_:.0f} s)"
            )
    state = result.state
    print(f"kubeconfig={state.kubeconfig}")
    print(f"containerd={state.containerd_socket}")
    print(f"keda-manifest={state.keda_manifest}")
    print(f"address={state.address}")


def _check_clean(layout: Layout) -> int:
    found = teardown.leftovers(layout)
    if not found:
        print("nothing of the cluster is left on this host")
        return 0
    print(f"{len(found)} thing(s) of the cluster are left on this host:", file=sys.stderr)
    for line in found:
        print(f"  {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
