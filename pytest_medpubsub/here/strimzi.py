"""Strimzi 1.2.0 on the cluster here, where no reachable registry serves its images.

Two things are cached under `<cache>/here/strimzi-<version>/`, keyed by version:

- `images/`: `docker save` archives of the operator image (which also serves the topic and user
  operators and kafka-init, as upstream's does) and the Kafka image, under the tags below. They
  are built from Strimzi's and Kafka's public sources *outside* this repository (no recipe for
  building a third party's code lives here; docs/kubernetes.md says what the images must hold),
  then taken from the local Docker engine into the cache by `make strimzi-here`.
- `install.yaml`: Strimzi's own `install/cluster-operator/` at the version's tag, read from a
  checkout given by path, with every image pointed at those local tags and nothing pulled. This
  is the release manifest (the release asset is the same files joined), so the harness installs
  it through the same code path as a downloaded release (`--medpubsub-strimzi-manifest`).

Users whose cluster can pull Strimzi's images never need any of this: the kind and minikube
paths download the release manifest.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_medpubsub import progress
from pytest_medpubsub.here import images
from pytest_medpubsub.here.commands import HereError, run
from pytest_medpubsub.here.layout import Layout

VERSION = "1.2.0"
KAFKA = "4.3.1"
# The operator refuses to start unless every Kafka version it supports has an image; all map to
# the one Kafka image built here (the Kafka resource asks for KAFKA).
SUPPORTED_KAFKA = ("4.2.0", "4.2.1", "4.3.0", "4.3.1")
OPERATOR_IMAGE = f"medpubsub.local/strimzi-operator:{VERSION}"
KAFKA_IMAGE = f"medpubsub.local/strimzi-kafka:{VERSION}-kafka-{KAFKA}"
INSTALL_DIR = "install/cluster-operator"
OPERATOR_DEPLOYMENT = "strimzi-cluster-operator"
SOURCE_HINT = (
    "a clone (or git directory) of Strimzi's public repository, "
    "github.com/strimzi/strimzi-kafka-operator, that has the tag " + VERSION
)
SAVE_TIMEOUT_S = 600.0


class StrimziMissing(HereError):
    """What the Strimzi stage needs is not there; the message says what and where to get it."""


@dataclass(frozen=True)
class StrimziCache:
    root: Path

    @classmethod
    def of(cls, layout: Layout) -> StrimziCache:
        return cls(layout.root / f"strimzi-{VERSION}")

    @property
    def manifest(self) -> Path:
        return self.root / "install.yaml"

    def archive(self, tag: str) -> Path:
        return self.root / "images" / (tag.rsplit("/", 1)[-1].replace(":", "-") + ".tar")

    @property
    def archives(self) -> list[Path]:
        return [self.archive(OPERATOR_IMAGE), self.archive(KAFKA_IMAGE)]

    def missing(self) -> str | None:
        """Why the cache cannot serve a run yet (one sentence), or None when it can."""
        absent = [path.name for path in (*self.archives, self.manifest) if not path.is_file()]
        if not absent:
            return None
        return (
            f"Strimzi {VERSION}'s cache {self.root} lacks {', '.join(absent)}; run "
            "`make strimzi-here STRIMZI_SRC=DIR` (docs/kubernetes.md, 'Strimzi on the cluster "
            "here')"
        )


def env_overrides() -> dict[str, str]:
    """The operator's environment that names images, all local, and nothing pulled."""
    kafka_images = "".join(f"{version}={KAFKA_IMAGE}\n" for version in SUPPORTED_KAFKA)
    return {
        "STRIMZI_IMAGE_PULL_POLICY": "Never",
        "STRIMZI_KAFKA_IMAGES": kafka_images,
        "STRIMZI_KAFKA_CONNECT_IMAGES": kafka_images,
        "STRIMZI_KAFKA_MIRROR_MAKER_2_IMAGES": kafka_images,
        "STRIMZI_DEFAULT_TOPIC_OPERATOR_IMAGE": OPERATOR_IMAGE,
        "STRIMZI_DEFAULT_USER_OPERATOR_IMAGE": OPERATOR_IMAGE,
        "STRIMZI_DEFAULT_KAFKA_INIT_IMAGE": OPERATOR_IMAGE,
    }


def localize(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strimzi's install documents with the operator (and every operand) on the local images."""
    kept = [document for document in documents if document]
    operators = [
        document
        for document in kept
        if document.get("kind") == "Deployment"
        and document.get("metadata", {}).get("name") == OPERATOR_DEPLOYMENT
    ]
    if len(operators) != 1:
        raise HereError(f"Strimzi's {INSTALL_DIR} has no Deployment {OPERATOR_DEPLOYMENT}")
    container = operators[0]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = OPERATOR_IMAGE
    container["imagePullPolicy"] = "Never"
    overrides = env_overrides()
    env = [entry for entry in container.get("env", []) if entry.get("name") not in overrides]
    container["env"] = [*env, *({"name": k, "value": v} for k, v in overrides.items())]
    return kept


def install_documents(source: Path) -> list[dict[str, Any]]:
    """The YAML documents of `install/cluster-operator/` at the tag, in file order, read from
    git (a work tree or a bare git directory alike; the checkout's own state does not matter)."""
    git = ["git", "-C", str(source)]
    listed = run([*git, "ls-tree", "--name-only", f"{VERSION}:{INSTALL_DIR}"], 60, check=False)
    if listed.returncode != 0:
        raise StrimziMissing(
            f"{source} is not {SOURCE_HINT} ({listed.stderr.strip() or 'git found no tag'})"
        )
    documents: list[dict[str, Any]] = []
    for name in sorted(line for line in listed.stdout.splitlines() if line.endswith(".yaml")):
        text = run([*git, "show", f"{VERSION}:{INSTALL_DIR}/{name}"], 60).stdout
        documents += [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    return documents


def render(source: Path) -> str:
    header = (
        f"# Strimzi {VERSION}: {INSTALL_DIR} at its tag, with the images built here "
        "(pytest_medpubsub.here.strimzi); the namespace placeholder stays for the harness.\n"
    )
    return header + yaml.safe_dump_all(localize(install_documents(source)), sort_keys=False)


def ensure(layout: Layout, source: Path | None) -> StrimziCache:
    """Fill the cache: the install manifest from `source` (when given), the image archives from
    the local Docker engine (when not cached yet). Raises StrimziMissing with what to do."""
    cache = StrimziCache.of(layout)
    if source is not None:
        _write(cache.manifest, render(source.expanduser()))
    elif not cache.manifest.is_file():
        raise StrimziMissing(
            f"no Strimzi {VERSION} install manifest is cached yet: give STRIMZI_SRC=DIR, "
            f"{SOURCE_HINT}"
        )
    for tag in (OPERATOR_IMAGE, KAFKA_IMAGE):
        target = cache.archive(tag)
        if target.is_file():
            continue
        if not _docker_has(tag):
            raise StrimziMissing(
                f"the image {tag} is neither cached ({target}) nor in the local Docker engine: "
                f"build it from Strimzi {VERSION}'s and Kafka {KAFKA}'s sources as "
                "docs/kubernetes.md ('Strimzi on the cluster here') describes, then run this again"
            )
        with progress.step(f"saving {tag} into {target}"):
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            run(["docker", "save", "--output", str(partial), tag], SAVE_TIMEOUT_S)
            partial.rename(target)
    return cache


def import_images(cache: StrimziCache, socket: Path) -> None:
    with progress.step(f"importing Strimzi {VERSION}'s images into the cluster's containerd"):
        images.import_archives(socket, cache.archives)


def _docker_has(tag: str) -> bool:
    try:
        return run(["docker", "image", "inspect", tag], 60, check=False).returncode == 0
    except (HereError, OSError, subprocess.SubprocessError):
        return False


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.rename(path)
