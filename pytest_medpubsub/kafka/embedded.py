"""A real Apache Kafka broker (KRaft, one node) as a JVM child process, on 127.0.0.1 by default.

The broker is what Strimzi deploys, not a fake: transactions, KIP-848 groups and read_committed
offsets behave as on the cluster. Ports are picked before the storage is formatted (the
controller's address is recorded then) and kept in the data dir, so a restart on the same data dir
comes back at the same address with its data.

The client listener can bind another address (`host`) and advertise another (`advertise`), so
that pods of a cluster on this machine reach the broker at the host's own address; the
controller listener always stays on loopback, since only the broker itself talks to it.

With `secure=True` (see `security`) the client listener takes SASL/SCRAM-SHA-512 only, the
StandardAuthorizer denies what no ACL allows, and one SCRAM user per service gets its ACLs at
start. The broker's own traffic (to its controller, and the inter-broker listener its
transaction coordinator writes markers through) runs on two loopback listeners with SASL/PLAIN
and an internal principal whose password exists only in the data dir's 0600 files: nothing
reaches the broker anonymously, and the only super users are that internal principal and the
harness's `admin`. The internal listener is also how the SCRAM users are created: SCRAM
credentials live in the metadata log, so the first one cannot be used to create itself, and this
way no password ever appears on a command line.

Why one module of this size (over 450 lines): the ports, the storage format, the listeners and
the security settings are one `server.properties` and one start sequence; split, each part would
need the others' choices to make sense.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from medpubsub.kafka_clients import common_config
from medpubsub.settings import KafkaSettings
from pytest_medpubsub import processes, progress
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.kafka.jars import KAFKA_VERSION, java_executable, libs_dir
from pytest_medpubsub.kafka.security import Credentials, Grant, acl_bindings, grants, write_private
from pytest_medpubsub.waiting import WaitTimeout, wait_for

HOST = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::")
_STATE_FILE = "embedded.json"
CREDENTIALS_FILE = "credentials.json"
_INTERNAL_FILE = "internal-credentials.json"
_INTERNAL_USER = "broker"
# Kafka's minimum for SCRAM-SHA-512: librdkafka derives the key on every connection.
_SCRAM_ITERATIONS = 4096

# The defaults assume three brokers and 50-partition internal topics; a single node wants 1 and 1.
# Group and transaction timings are shortened so that joins and a killed maker's open transaction
# resolve in about a second rather than in tens of seconds. A maker's session (KIP-848) expires
# 1 s after its last heartbeat (4 heartbeats of 250 ms): that is what a crashed maker's orders
# wait before another maker takes its partitions. Measured on 2026-12-07 (issue 17): the crash
# scenario gave p95 2.53-3.12 s in nine of ten runs (4.38 s in one) and p99 4.15-5.47 s with
# 1 s, against 7.79-7.93 s and 9.44-9.79 s with 6 s. The step ramp does not see the difference:
# p95 3.00-3.07 s / p99 3.75-3.89 s with 1 s, 2.96-3.69 s / 3.87-4.57 s with 6 s (alternated).
#
# What a session this short risks is a stall of the broker or of a maker past 1 s: every maker it
# hits loses its partitions, rejoins within a second, and its orders in flight are made again
# (fenced by the new owner's registration, system/medicine/producers.py: a retry, never a
# duplicate). None in the step ramp, in two demos at 40 patients, or on the kubeadm cluster
# (steady state, step ramp, kills, backlog). At 60 patients, beyond this machine's capacity, the
# 60 patient processes stopping at once stalled the broker in 4 of 6 runs (8-16 makers expired
# together): each patient was a session of its own, which Linux's autogroup weighs like the
# broker; with the patients at the lowest priority (platforms/local_system.py) two more runs saw
# none. Once, in a bench run at 40 patients, all 14 makers expired mid-run on a broker that had
# served eight runs before (p99 6.98 s; a full collection of the serial collector is a lead, not
# measured). An earlier 1.5 s session once expired on the kubeadm cluster for a maker throttled
# at its 500m CPU limit (not seen since). Shorter than 1 s was not tried.
#
# The broker's own session with its controller keeps Kafka's defaults (9 s, a heartbeat every
# 2 s), as the Strimzi cluster does. Shorter, a broker starved of CPU misses it and its controller
# fences it: the only broker fenced leaves every partition leaderless for a moment, and Kafka 4.3's
# transaction coordinator then completes the transactions it is committing without writing their
# markers to those partitions (it takes them for deleted topics). An order's tabs then commit
# without its offset, and the next maker makes it again: exactly-once is lost (2 s here broke it
# at 40 patients on two cores). The price: a broker restarted after SIGKILL registers again only
# once the controller has expired its previous incarnation's session (DUPLICATE_BROKER_REGISTRATION
# until then), so it serves again about 12 s after the kill instead of 5 s.
_SERVER_SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "num.partitions": "1",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "share.coordinator.state.topic.num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.heartbeat.interval.ms": "250",
    "group.consumer.min.heartbeat.interval.ms": "250",
    "group.consumer.session.timeout.ms": "1000",
    "group.consumer.min.session.timeout.ms": "1000",
    "group.consumer.assignment.interval.ms": "0",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
    "broker.heartbeat.interval.ms": "2000",
    "broker.session.timeout.ms": "9000",
    "log.segment.bytes": str(16 * 1024 * 1024),
}

# A small heap, a single-threaded collector and the C1 compiler: the broker carries a few hundred
# messages a second here, and on two cores its start-up time matters more than its peak speed.
_JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx768m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


@dataclass(frozen=True)
class _Layout:
    """What is fixed at format time and must be the same at every restart."""

    cluster_id: str
    port: int
    controller_port: int
    version: str
    # The internal SASL/PLAIN listener of a secure broker; 0 until the data dir is first secured.
    broker_port: int = field(default=0)


class EmbeddedKafka:
    """One broker on its data dir: `start()`, `stop()`, `kill()` (SIGKILL), `restart()`.

    `host` is the address the client listener binds (a wildcard binds every address);
    `advertise` is the address clients are told to dial, by default `host` itself. A wildcard
    cannot be dialled, so binding one needs an explicit `advertise`. `secure` turns on SASL/SCRAM
    and ACLs (see the module docstring); `kafka` then connects as the harness's admin.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        version: str = KAFKA_VERSION,
        *,
        host: str = HOST,
        advertise: str | None = None,
        secure: bool = False,
        acl_grants: dict[str, tuple[Grant, ...]] | None = None,
    ):
        if advertise is None and host in WILDCARDS:
            raise ValueError(
                f"the broker binds every address ({host}), so it needs the one clients should "
                "dial as its advertised address (--advertise ADDR)"
            )
        self.data_dir = data_dir.resolve()
        self.version = version
        self.host = host
        self.advertise = advertise or host
        self._wanted_port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._layout: _Layout | None = None
        self.secure = secure
        self._grants = acl_grants if acl_grants is not None else grants()
        self._credentials: Credentials | None = None
        self._internal_password = ""

    @property
    def bootstrap_servers(self) -> str:
        return _host_port(self.advertise, self._require_layout().port)

    @property
    def kafka(self) -> KafkaSettings:
        """How the harness connects: anonymously, or as `admin` on a secure broker."""
        open_kafka = KafkaSettings(kafka_bootstrap=self.bootstrap_servers)
        if self._credentials is None:
            return open_kafka
        return self._credentials.settings(open_kafka, "admin")

    @property
    def credentials(self) -> Credentials | None:
        """Every identity's username and password (None: an open broker)."""
        return self._credentials

    @property
    def credentials_file(self) -> Path | None:
        """The 0600 JSON file of `credentials` (None: an open broker)."""
        return self.data_dir / CREDENTIALS_FILE if self._credentials is not None else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    def start(self, timeout_s: float = 120.0) -> str:
        """Format the data dir if new, start the JVM, return the bootstrap once clients connect."""
        if self.pid is not None:
            return self.bootstrap_servers
        java = java_executable()
        classpath = f"{libs_dir(self.version)}/*"
        layout = self._load_or_format(java, classpath)
        self._process = processes.spawn(
            [java, *self._jvm_options(), "-cp", classpath, "kafka.Kafka", str(self._config())],
            log_path=self.data_dir / "logs" / "java.out",
        )
        where = _host_port(self.host, layout.port)
        if self.advertise != self.host:
            where += f", advertised as {self.bootstrap_servers}"
        with progress.step(f"Starting Apache Kafka {self.version} on {where}"):
            self._wait_ready(timeout_s)
        return self.bootstrap_servers

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM (a clean shutdown keeps the restart fast), then SIGKILL after `grace_s`."""
        if self._process is not None:
            processes.stop(self._process, grace_s)
            self._process = None

    def kill(self) -> None:
        """SIGKILL: the broker dies as in a crash; the data dir stays for `start()`."""
        if self._process is not None:
            processes.kill(self._process)
            self._process = None

    def restart(self, timeout_s: float = 120.0) -> str:
        self.stop()
        return self.start(timeout_s)

    def __enter__(self) -> EmbeddedKafka:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- layout and configuration ------------------------------------------------------------

    def _require_layout(self) -> _Layout:
        if self._layout is None:
            raise RuntimeError("the embedded broker has not been started")
        return self._layout

    def _load_or_format(self, java: str, classpath: str) -> _Layout:
        state = self.data_dir / _STATE_FILE
        if state.exists():
            self._layout = _Layout(**json.loads(state.read_text()))
            if self._layout.version != self.version:
                raise RuntimeError(
                    f"{self.data_dir} holds Kafka {self._layout.version} data; use another data "
                    f"dir for Kafka {self.version}"
                )
            if self.secure:
                self._load_or_make_secrets()
                state.write_text(json.dumps(self._layout.__dict__))
            self._write_config()
            return self._layout
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._layout = _Layout(
            cluster_id=_new_cluster_id(),
            port=self._wanted_port or _free_port(self.host),
            controller_port=_free_port(HOST),
            version=self.version,
        )
        if self.secure:
            self._load_or_make_secrets()
        self._write_config()
        with progress.step("Formatting the embedded Kafka's storage"):
            result = subprocess.run(
                [java, *self._jvm_options(), "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", self._layout.cluster_id, "-c", str(self._config())],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"formatting {self.data_dir} failed: {result.stdout}{result.stderr}")
        state.write_text(json.dumps(self._layout.__dict__))
        return self._layout

    def _config(self) -> Path:
        return self.data_dir / "server.properties"

    def _load_or_make_secrets(self) -> None:
        """The internal listener's port and password and the identities' credentials: made once
        per data dir, so that a restart keeps them (the users live in the metadata log)."""
        layout = self._require_layout()
        if not layout.broker_port:
            self._layout = layout = _Layout(**{**layout.__dict__, "broker_port": _free_port(HOST)})
        internal = self.data_dir / _INTERNAL_FILE
        credentials = self.data_dir / CREDENTIALS_FILE
        if internal.exists() and credentials.exists():
            self._internal_password = json.loads(internal.read_text())["password"]
            self._credentials = Credentials.read(credentials)
            return
        self._internal_password = secrets.token_urlsafe(32)
        write_private(internal, json.dumps({"password": self._internal_password}) + "\n")
        self._credentials = Credentials.generate()
        self._credentials.write(credentials)

    def _security_settings(self) -> dict[str, str]:
        """Listeners, SASL and the authorizer of a secure broker (see the module docstring)."""
        layout = self._require_layout()
        plain = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{_INTERNAL_USER}" password="{self._internal_password}" '
            f'user_{_INTERNAL_USER}="{self._internal_password}";'
        )
        return {
            "listeners": f"CLIENT://{_host_port(self.host, layout.port)},"
            f"BROKER://{HOST}:{layout.broker_port},CONTROLLER://{HOST}:{layout.controller_port}",
            "advertised.listeners": f"CLIENT://{self.bootstrap_servers},"
            f"BROKER://{HOST}:{layout.broker_port}",
            "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,BROKER:SASL_PLAINTEXT,"
            "CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name": "BROKER",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.client.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.broker.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.broker.plain.sasl.jaas.config": plain,
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{_INTERNAL_USER};User:admin",
        }

    def _internal_kafka(self) -> KafkaSettings:
        """The internal principal on the loopback BROKER listener (provisioning only)."""
        return KafkaSettings(
            kafka_bootstrap=f"{HOST}:{self._require_layout().broker_port}",
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username=_INTERNAL_USER,
            kafka_sasl_password=self._internal_password,
        )

    def _provision(self, timeout_s: float) -> None:
        """Create (or refresh) every identity's SCRAM credential and its ACLs; both idempotent."""
        credentials = self._credentials
        assert credentials is not None
        admin = AdminClient(quiet(common_config(self._internal_kafka(), "medpubsub-provision")))
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, _SCRAM_ITERATIONS)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(username, info, password.encode())
            for username, password in credentials.users.values()
        ]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result(timeout=timeout_s)
        bindings = [
            binding
            for identity, identity_grants in self._grants.items()
            for binding in acl_bindings(credentials.username(identity), identity_grants)
        ]
        for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
            future.result(timeout=timeout_s)

    def _write_config(self) -> None:
        layout = self._require_layout()
        settings = dict(_SERVER_SETTINGS)
        settings.update(
            {
                "listeners": f"PLAINTEXT://{_host_port(self.host, layout.port)},"
                f"CONTROLLER://{HOST}:{layout.controller_port}",
                "advertised.listeners": f"PLAINTEXT://{self.bootstrap_servers}",
                "controller.quorum.voters": f"1@{HOST}:{layout.controller_port}",
                "log.dirs": str(self.data_dir / "log"),
            }
        )
        if self.secure:
            settings.update(self._security_settings())
        # 0600: a secure broker's file holds the internal listener's password.
        write_private(
            self._config(), "".join(f"{key}={value}\n" for key, value in settings.items())
        )

    def _jvm_options(self) -> list[str]:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with resources.as_file(resources.files("pytest_medpubsub.kafka") / "log4j2.xml") as log4j:
            return [
                *_JVM_OPTIONS,
                # Every collection with its pause, beside the broker's log: a maker's 1 s session
                # expires in a stall past 1 s, and this says whether the collector was the stall.
                f"-Xlog:gc:file={logs / 'gc.log'}:time,uptime:filecount=2,filesize=10m",
                f"-Dkafka.logs.dir={logs}",
                f"-Dlog4j2.configurationFile={log4j}",
            ]

    # -- readiness -----------------------------------------------------------------------------

    def _wait_ready(self, timeout_s: float) -> None:
        """Ready means a metadata request answers at the advertised address, not only that the
        port accepts connections: that address is the one every client dials."""
        layout = self._require_layout()

        def answering(kafka: KafkaSettings, address: tuple[str, int]) -> Callable[[], bool]:
            admins: list[AdminClient] = []  # made once the port is open: librdkafka logs refusals

            def ready() -> bool:
                if self._process is None or self._process.poll() is not None:
                    raise _BrokerExited(self._failure_detail())
                with socket.create_connection(address, timeout=1):
                    pass
                if not admins:
                    config = quiet(common_config(kafka, "medpubsub-embedded-ready"))
                    admins.append(AdminClient(config))
                return len(admins[0].list_topics(timeout=5).brokers) > 0

            return ready

        deadline = time.monotonic() + timeout_s
        try:
            if self.secure:
                wait_for(
                    answering(self._internal_kafka(), (HOST, layout.broker_port)),
                    timeout_s,
                    f"the broker's internal listener at {HOST}:{layout.broker_port} to answer",
                )
                self._provision(max(5.0, deadline - time.monotonic()))
            wait_for(
                answering(self.kafka, (self.advertise, layout.port)),
                max(1.0, deadline - time.monotonic()),
                f"the broker at {self.bootstrap_servers} to answer metadata requests",
            )
        except (_BrokerExited, WaitTimeout, KafkaException) as error:
            self.kill()
            raise RuntimeError(f"the embedded Kafka did not start: {error}") from None

    def _failure_detail(self) -> str:
        code = self._process.returncode if self._process else None
        lines = []
        for path in (self.data_dir / "logs" / "java.out", self.log_file):
            if path.exists():
                lines += [line for line in path.read_text(errors="replace").splitlines() if line]
        tail = " | ".join(lines[-3:]) or "no output"
        return f"the JVM exited with status {code}: {tail} (logs in {self.data_dir / 'logs'})"


class _BrokerExited(Exception):
    pass


def _free_port(host: str) -> int:
    """A port free on `host` now (the broker binds it moments later)."""
    family = socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False  # a host name


def _host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets as Kafka and librdkafka read it."""
    return f"[{host}]:{port}" if _is_ipv6(host) else f"{host}:{port}"


def _new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, as Kafka makes them.

    Like Kafka's own `Uuid.randomUuid`, an id starting with "-" is drawn again: the storage tool
    would read it as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
