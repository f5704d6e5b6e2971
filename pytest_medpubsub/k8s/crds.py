"""The CRDs of the pinned Strimzi and KEDA, fetched by version into the user cache.

The offline proof of the manifests (`pytest_medpubsub.k8s.check`) validates Strimzi and KEDA
objects against the very CRDs a cluster would get, so they must come from the pinned releases,
not from a copy kept in the repository that could drift:

- KEDA publishes its CRDs in its Go module (`config/crd/bases`, plus the kustomize patch of
  `config/crd/patches` that the release manifest applies). `go mod download` fetches the module
  through whatever proxy the user's Go is set up with.
- Strimzi does not ship its CRDs in an artifact; its build generates them from the API model
  with its CRD generator (api/pom.xml, execution `generate-crd-co-install-v1`). We do the same
  with the released `io.strimzi:api` and `io.strimzi:crd-generator` jars, resolved by Maven, and
  the same generator arguments, so the result is what the release's install files hold.

Each version gets a folder under `<cache>/crds/`; a finished one is marked like the Kafka jars,
so an interrupted fetch is redone rather than trusted.

    python -m pytest_medpubsub.k8s.crds      # fetch both, print the folder
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pytest_medpubsub import progress
from pytest_medpubsub.kafka.jars import cache_dir, find_java, maven_copy_dependencies

STRIMZI_VERSION = "1.2.0"
KEDA_VERSION = "2.20.2"
KEDA_MODULE = "github.com/kedacore/keda/v2"
STRIMZI_JAVA = 21
"""Strimzi 1.2.0's CRD generator is compiled for Java 21 (class file version 65)."""

STRIMZI_KINDS = {
    "io.strimzi.api.kafka.model.kafka.Kafka": "040-Crd-kafka.yaml",
    "io.strimzi.api.kafka.model.topic.KafkaTopic": "043-Crd-kafkatopic.yaml",
    "io.strimzi.api.kafka.model.user.KafkaUser": "044-Crd-kafkauser.yaml",
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool": "045-Crd-kafkanodepool.yaml",
}
"""The Strimzi kinds the manifests use, named as in Strimzi's install folder."""

# The arguments of Strimzi's own build (api/pom.xml at the release tag), minus the kinds.
STRIMZI_GENERATOR_ARGS = (
    "--label", "app:strimzi",
    "--label", "strimzi.io/crd-install:true",
    "--target-kube", "1.16+",
    "--crd-api-version", "v1",
    "--api-versions", "v1",
    "--storage-version", "v1",
    "--yaml",
)  # fmt: skip
_COMPLETE = ".complete"


class CrdsUnavailable(Exception):
    """The CRDs cannot be fetched here; the message says which prerequisite to provide."""


def crds_dir() -> Path:
    """The folder holding the pinned Strimzi and KEDA CRDs; fetches what is missing first."""
    strimzi_crds()
    keda_crds()
    return cache_dir() / "crds"


def strimzi_crds(version: str = STRIMZI_VERSION) -> Path:
    """Strimzi `version`'s CRDs, generated from its API model the first time."""
    return _cached(f"strimzi-{version}", lambda staging: _generate_strimzi(version, staging))


def keda_crds(version: str = KEDA_VERSION) -> Path:
    """KEDA `version`'s CRDs (and their patches), copied from its Go module the first time."""
    return _cached(f"keda-{version}", lambda staging: _copy_keda(version, staging))


def _cached(name: str, fill: Callable[[Path], None]) -> Path:
    target = cache_dir() / "crds" / name
    if (target / _COMPLETE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=target.parent))
    try:
        fill(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / _COMPLETE).write_text(f"{name}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _generate_strimzi(version: str, output: Path) -> None:
    java = find_java(STRIMZI_JAVA)
    if java is None:
        raise CrdsUnavailable(
            f"Strimzi {version}'s CRD generator needs Java {STRIMZI_JAVA} or newer and none was "
            "found (JAVA_HOME, PATH, the usual JDK folders); install one or point JAVA_HOME at it."
        )
    libs = output / "libs"
    with progress.step(f"Generating Strimzi {version}'s CRDs from its API model (first run only)"):
        error = maven_copy_dependencies(
            "pytest_medpubsub.k8s", "strimzi-api.pom.xml", {"strimzi.version": version}, libs
        )
        if error is not None:
            raise CrdsUnavailable(
                f"Maven could not fetch io.strimzi:api and io.strimzi:crd-generator {version} "
                f"({error}); check that Maven reaches its repository (or your settings.xml mirror)."
            )
        kinds = [f"{model}={output / file}" for model, file in STRIMZI_KINDS.items()]
        result = subprocess.run(
            [
                java,
                "-cp",
                f"{libs}/*",
                "io.strimzi.crdgenerator.CrdGenerator",
                *STRIMZI_GENERATOR_ARGS,
                *kinds,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    shutil.rmtree(libs, ignore_errors=True)
    missing = [file for file in STRIMZI_KINDS.values() if not (output / file).is_file()]
    if result.returncode != 0 or missing:
        detail = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise CrdsUnavailable(
            f"Strimzi {version}'s CRD generator failed (exit {result.returncode}, missing "
            f"{missing}): {detail[:300]}"
        )


def _copy_keda(version: str, output: Path) -> None:
    if shutil.which("go") is None:
        raise CrdsUnavailable(
            f"KEDA {version}'s CRDs come from its Go module and no `go` was found; install Go."
        )
    with progress.step(f"Fetching KEDA {version}'s Go module for its CRDs (first run only)"):
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{KEDA_MODULE}@v{version}"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    try:
        module = json.loads(result.stdout)
    except json.JSONDecodeError:
        module = {}
    if result.returncode != 0 or "Dir" not in module:
        detail = module.get("Error") or result.stderr.strip() or "no output"
        raise CrdsUnavailable(
            f"`go mod download {KEDA_MODULE}@v{version}` failed ({detail}); check that Go reaches "
            "its module proxy (GOPROXY)."
        )
    crd = Path(module["Dir"]) / "config" / "crd"
    files = [*sorted((crd / "bases").glob("*.yaml")), *sorted((crd / "patches").glob("*.yaml"))]
    if not files:
        raise CrdsUnavailable(f"KEDA {version}'s module has no CRDs under {crd}")
    # One flat folder: CrdSchemas finds a CRD's `<singular>_patch.yaml` beside it.
    for file in files:
        shutil.copyfile(file, output / file.name)


def main() -> int:
    try:
        print(crds_dir())
    except CrdsUnavailable as error:
        print(f"crds: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
