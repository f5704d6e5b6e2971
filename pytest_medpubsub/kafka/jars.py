"""Where the embedded broker's jars come from: KAFKA_HOME, or Maven into a per-version cache.

Maven is asked with the project's own `pom.xml`, so whatever repositories and mirrors the user's
Maven knows are used; nothing here names a repository. A finished resolution is marked with a
file so that an interrupted one is never mistaken for a complete cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path

from pytest_medpubsub import progress

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.4"
MIN_JAVA = 17
_COMPLETE = ".complete"


class KafkaUnavailable(Exception):
    """The broker cannot be started here; the message says which prerequisite to provide."""


def cache_dir() -> Path:
    """`MEDPUBSUB_CACHE_DIR`, else `$XDG_CACHE_HOME/medpubsub`, else `~/.cache/medpubsub`."""
    explicit = os.environ.get("MEDPUBSUB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "medpubsub"


def java_executable() -> str:
    """The `java` to run the broker with (JAVA_HOME first), checked to be Java 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise KafkaUnavailable(_missing("no `java` was found"))
    version = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=30, check=False
    ).stderr
    major = java_major(version)
    if major is not None and major < MIN_JAVA:
        raise KafkaUnavailable(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer but `{java}` is Java {major}; "
            "install a newer JDK or point JAVA_HOME at one."
        )
    return java


def java_major(version_output: str) -> int | None:
    """The major version in the output of `java -version` ("1.8.0" is Java 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first  # "1.8.0" is Java 8


JVM_DIRS = (Path("/usr/lib/jvm"), Path("/Library/Java/JavaVirtualMachines"))
"""Where Linux distributions and macOS install JDKs side by side (the default one is on PATH)."""


def find_java(minimum: int) -> str | None:
    """A `java` of at least `minimum`: JAVA_HOME's, the one on PATH, else any installed JDK.

    A tool may need a newer Java than the default one of the machine (Strimzi's CRD generator is
    built for Java 21 while Debian 12 defaults to 17); looking beside the default finds a JDK the
    user installed without making it the default.
    """
    for java in _java_candidates():
        major = java_major(
            subprocess.run(
                [java, "-version"], capture_output=True, text=True, timeout=30, check=False
            ).stderr
        )
        if major is not None and major >= minimum:
            return java
    return None


def _java_candidates() -> Iterator[str]:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        yield str(Path(java_home) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        yield on_path
    for directory in JVM_DIRS:
        for java in sorted(directory.glob("*/bin/java"), reverse=True):
            yield str(java)
        for java in sorted(directory.glob("*/Contents/Home/bin/java"), reverse=True):
            yield str(java)


def libs_dir(version: str = KAFKA_VERSION) -> Path:
    """A directory of jars that runs Kafka `version`; resolves them the first time."""
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise KafkaUnavailable(
                f"KAFKA_HOME={kafka_home} has no libs/kafka_2.13-*.jar; point it at an unpacked "
                "Apache Kafka distribution or unset it to let Maven fetch the jars."
            )
        return libs
    cached = cache_dir() / f"kafka-{version}" / "libs"
    if (cached / _COMPLETE).exists():
        return cached
    return _resolve_with_maven(version, cached)


def _resolve_with_maven(version: str, target: Path) -> Path:
    if shutil.which("mvn") is None:
        raise KafkaUnavailable(_missing("no `mvn` was found to fetch Kafka's jars"))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=target.parent))
    with progress.step(f"Resolving Apache Kafka {version} jars with Maven (first run only)"):
        error = maven_copy_dependencies(
            "pytest_medpubsub.kafka",
            "pom.xml",
            {"kafka.version": version, "log4j.version": LOG4J_VERSION},
            staging,
        )
    if error is not None:
        shutil.rmtree(staging, ignore_errors=True)
        raise KafkaUnavailable(
            f"Maven could not fetch Apache Kafka {version} ({error}); check that Maven reaches "
            "its repository (or your settings.xml mirror), or set KAFKA_HOME."
        )
    (staging / _COMPLETE).write_text(f"kafka {version}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def maven_copy_dependencies(
    package: str, pom_name: str, properties: Mapping[str, str], output: Path
) -> str | None:
    """Copy the runtime dependencies of the POM shipped in `package` into `output`.

    Maven is asked with a POM of the project's own, so whatever repositories and mirrors the
    user's Maven knows are used. Returns None on success, else Maven's first error line (the
    caller knows what was being fetched and how to say it).
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        return "no `mvn` was found"
    pom = resources.files(package).joinpath(pom_name)
    with resources.as_file(pom) as pom_path:
        command = [
            mvn,
            "--batch-mode",
            "--quiet",
            "-f",
            str(pom_path),
            *(f"-D{key}={value}" for key, value in properties.items()),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={output}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        return _last_error_line(result.stdout + result.stderr)
    return None


def _last_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if "ERROR" in line]
    line = (errors or output.strip().splitlines() or ["no output"])[0]
    return re.sub(r"\x1b\[[0-9;]*m", "", line).removeprefix("[ERROR] ").strip()[:300]


def _missing(what: str) -> str:
    return (
        f"The embedded Kafka cannot start: {what}; install Java {MIN_JAVA}+ with Maven, or set "
        "KAFKA_HOME to an unpacked Apache Kafka, or use a running broker with "
        "--medpubsub-kafka / --kafka HOST:PORT."
    )
