"""The secure embedded broker: every identity can do its service's work and nothing more.

One `medpubsub kafka --secure` serves the whole module (started as a user would start it, so its
`bootstrap=` / `credentials=` lines are tested too). Each allowed path runs the real client
configuration the service uses; each denial is Kafka's own refusal, read from the client.

Why one module of this size (over 450 lines): every test here shares that one secured broker
(a JVM start with SCRAM provisioning, seconds on two cores); split, each part would start its own.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from medpubsub.access import check_access
from medpubsub.kafka_clients import (
    common_config,
    consumer_config,
    order_producer_config,
    producer_config,
    reader_config,
)
from medpubsub.messages import Order, Tab
from medpubsub.settings import ConfigError, KafkaSettings
from pytest_medpubsub import processes, state
from pytest_medpubsub.chaos import actions, probes, target
from pytest_medpubsub.kafka.client_log import quiet
from pytest_medpubsub.kafka.group import group_assignment
from pytest_medpubsub.kafka.offsets import OffsetReader
from pytest_medpubsub.kafka.security import IDENTITIES, Credentials, acl_bindings, grants
from pytest_medpubsub.load import locustfile
from pytest_medpubsub.observer import Observer
from pytest_medpubsub.waiting import wait_until

ORDERS, DELIVERIES, DLQ = "tabs.orders", "tabs.deliveries", "tabs.dlq"
DENIED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str
    credentials_file: Path
    credentials: Credentials
    data_dir: Path

    def kafka(self, identity: str) -> KafkaSettings:
        return self.credentials.settings(KafkaSettings(kafka_bootstrap=self.bootstrap), identity)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """`medpubsub kafka --secure` in the background for this module, stopped by pid."""
    data_dir = tmp_path_factory.mktemp("secure") / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "medpubsub", "kafka", "--secure", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        # The JVM start bounds these reads (the broker gives up after 120 s and the command exits).
        bootstrap_line = process.stdout.readline().decode().strip()
        credentials_line = process.stdout.readline().decode().strip()
        assert bootstrap_line.startswith("bootstrap=127.0.0.1:"), bootstrap_line
        assert credentials_line.startswith("credentials="), credentials_line
        path = Path(credentials_line.partition("=")[2])
        yield SecureBroker(
            bootstrap_line.partition("=")[2], path, Credentials.read(path), data_dir.resolve()
        )
        assert processes.stop(process, grace_s=30) == 0
    finally:
        processes.kill(process)


# -- helpers: what each service's client does ----------------------------------------------------


def _produce(kafka: KafkaSettings, topic: str, value: bytes, **config: object) -> KafkaError | None:
    """Produce one record with a plain producer; Kafka's answer (None: acknowledged)."""
    producer = Producer(
        quiet(common_config(kafka, f"test-{kafka.kafka_sasl_username}"))
        | {"acks": "all", "message.timeout.ms": 10_000}
        | config
    )
    outcome: list[KafkaError | None] = []
    producer.produce(topic, value, on_delivery=lambda error, _: outcome.append(error))
    producer.flush(15)
    assert outcome, f"no delivery report for {topic} within 15 s"
    return outcome[0]


def _read(kafka: KafkaSettings, topic: str, timeout_s: float = 10.0) -> tuple[int, set[int]]:
    """Read `topic` from the beginning, group-less: (records, error codes seen)."""
    client_id = f"medpubsub-observer-test-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(quiet(reader_config(kafka, client_id)))
    records, errors = 0, set()
    try:
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)]
        consumer.assign(partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not records:
            if KafkaError.TOPIC_AUTHORIZATION_FAILED in errors:
                break
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is None:
                records += 1
            else:
                errors.add(error.code())
    finally:
        consumer.close()
    return records, errors


def _assert_refused(error: KafkaError | None, code: int) -> None:
    assert error is not None, "Kafka accepted what it should have refused"
    assert error.code() == code, error


def _order() -> Order:
    return Order(
        order_id=str(uuid.uuid4()),
        patient_id="p-secure",
        tabs_count=1,
        ordered_at_ns=time.time_ns(),
    )


# -- pure: the plan -------------------------------------------------------------------------------


def test_no_grant_names_a_wildcard_or_all() -> None:
    for identity_grants in grants().values():
        for grant in identity_grants:
            assert grant.name not in ("*", "")
            assert "All" not in grant.operations


def test_credentials_are_written_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{}")
    path.chmod(0o644)  # an older, readable file is not kept readable
    credentials = Credentials.generate()
    credentials.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Credentials.read(path) == credentials
    env = credentials.environment("medicine")
    assert env["MEDPUBSUB_KAFKA_SASL_USERNAME"] == "medicine"
    assert env["MEDPUBSUB_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    kafka = credentials.settings(KafkaSettings(kafka_bootstrap="127.0.0.1:1"), "keda")
    assert (kafka.kafka_sasl_username, kafka.kafka_sasl_mechanism) == ("keda", "SCRAM-SHA-512")


def test_an_unreadable_credentials_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the Kafka credentials file"):
        Credentials.read(tmp_path / "missing.json")


def test_an_open_broker_needs_no_access_check() -> None:
    # PLAINTEXT: no client is made, so even an address nobody listens on returns at once.
    started = time.monotonic()
    check_access(KafkaSettings(kafka_bootstrap="127.0.0.1:9"), "patient", ORDERS)
    assert time.monotonic() - started < 0.5


# -- the broker and its credentials --------------------------------------------------------------


def test_the_credentials_file_is_private_and_names_every_identity(
    secure_broker: SecureBroker,
) -> None:
    mode = stat.S_IMODE(secure_broker.credentials_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    document = json.loads(secure_broker.credentials_file.read_text())
    assert document["security_protocol"] == "SASL_PLAINTEXT"
    assert document["sasl_mechanism"] == "SCRAM-SHA-512"
    assert set(IDENTITIES) <= set(document)
    passwords = [document[identity]["password"] for identity in IDENTITIES]
    assert len(set(passwords)) == len(passwords)
    assert all(len(password) >= 32 for password in passwords)


def test_no_password_is_written_to_the_broker_logs(secure_broker: SecureBroker) -> None:
    passwords = [secure_broker.credentials.users[i][1] for i in IDENTITIES]
    internal = json.loads((secure_broker.data_dir / "internal-credentials.json").read_text())
    passwords.append(internal["password"])
    logs = list((secure_broker.data_dir / "logs").iterdir())
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        assert not [p for p in passwords if p in text], f"a password appears in {log}"


def test_the_broker_holds_exactly_the_planned_acls(secure_broker: SecureBroker) -> None:
    admin = AdminClient(quiet(common_config(secure_broker.kafka("admin"), "test-acls")))
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    found = admin.describe_acls(everything, request_timeout=10).result(timeout=15)
    planned = {
        binding
        for identity, identity_grants in grants().items()
        for binding in acl_bindings(secure_broker.credentials.username(identity), identity_grants)
    }
    assert set(found) == planned
    assert not [b for b in found if b.name == "*" or b.operation == AclOperation.ALL]
    assert not [b for b in found if b.principal in {"User:*", "User:admin"}]


# -- allowed paths: the system's own work, as each service does it ------------------------------


def test_every_identity_can_do_its_services_work(secure_broker: SecureBroker) -> None:
    patient, medicine = secure_broker.kafka("patient"), secure_broker.kafka("medicine")
    # A patient orders through its idempotent producer (no IdempotentWrite needed: KIP-679).
    order = _order()
    producer = Producer(quiet(order_producer_config(patient, "patient-secure")))
    acks: list[KafkaError | None] = []
    producer.produce(
        ORDERS, order.to_bytes(), key="p-secure", on_delivery=lambda e, _: acks.append(e)
    )
    assert producer.flush(15) == 0
    assert acks == [None]

    # A maker takes it in group `medicine` and makes it in a transaction with the offset commit.
    consumer = Consumer(quiet(consumer_config(medicine, "medicine-secure", "medicine")))
    consumer.subscribe([ORDERS])
    try:
        record = wait_until(
            lambda: consumer.poll(0.5),
            lambda message: message is not None and message.error() is None,
            30,
            "the maker to receive the order",
        )
        assert record is not None
        maker = Producer(
            quiet(producer_config(medicine, "medicine-secure", "medicine-secure-host-1-0"))
        )
        maker.init_transactions(15)
        maker.begin_transaction()
        tab = Tab(
            tab_id=f"{order.order_id}:0", order_id=order.order_id, patient_id=order.patient_id,
            index=0, tabs_count=1, ordered_at_ns=order.ordered_at_ns, made_at_ns=time.time_ns(),
            maker="medicine-secure",
        )  # fmt: skip
        maker.produce(DELIVERIES, tab.to_bytes(), key=order.order_id)
        maker.produce(DLQ, b"{}", key=order.order_id)  # the maker may dead-letter too
        partition, offset = record.partition(), record.offset()
        assert partition is not None
        assert offset is not None
        position = [TopicPartition(ORDERS, partition, offset + 1)]
        maker.send_offsets_to_transaction(position, consumer.consumer_group_metadata(), 15)
        maker.commit_transaction(15)
    finally:
        consumer.close()

    # KEDA's view (and the harness's lag reader): committed and end offsets, group members.
    with OffsetReader(secure_broker.kafka("keda"), "medicine", ORDERS) as reader:
        partitions = reader.partitions()
    assert len(partitions) >= 12
    assert any(p.committed > 0 for p in partitions)
    assert group_assignment(secure_broker.kafka("keda"), "medicine", ORDERS).partitions == len(
        partitions
    )

    # The observer sees the order, complete.
    observer = Observer(secure_broker.kafka("observer")).start()
    try:
        summary = wait_until(
            observer.summary,
            lambda seen: seen.complete_orders >= 1,
            30,
            "the observer to see the order complete",
        )
        assert summary.lost_orders == 0
    finally:
        observer.stop()


# -- denials -------------------------------------------------------------------------------------


def test_a_patient_cannot_read_deliveries_or_write_tabs(secure_broker: SecureBroker) -> None:
    patient = secure_broker.kafka("patient")
    records, errors = _read(patient, DELIVERIES)
    assert records == 0
    assert errors & DENIED, errors
    # Not even the topic's metadata: without Describe there is no Read either.
    admin = AdminClient(quiet(common_config(patient, "test-patient-metadata")))
    topic = admin.list_topics(DELIVERIES, timeout=10).topics[DELIVERIES]
    assert topic.error is not None
    assert topic.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    error = _produce(patient, DELIVERIES, b"forged tab")
    _assert_refused(error, KafkaError.TOPIC_AUTHORIZATION_FAILED)


def test_a_maker_cannot_write_orders_nor_use_a_foreign_transactional_id(
    secure_broker: SecureBroker,
) -> None:
    medicine = secure_broker.kafka("medicine")
    error = _produce(medicine, ORDERS, b"forged order")
    _assert_refused(error, KafkaError.TOPIC_AUTHORIZATION_FAILED)
    producer = Producer(quiet(producer_config(medicine, "medicine-foreign", "patient-txn")))
    with pytest.raises(KafkaException) as refused:
        producer.init_transactions(15)
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


@pytest.mark.parametrize("topic", [ORDERS, DELIVERIES, DLQ])
def test_the_observer_cannot_write_anything(secure_broker: SecureBroker, topic: str) -> None:
    error = _produce(secure_broker.kafka("observer"), topic, b"observer writes")
    _assert_refused(error, KafkaError.TOPIC_AUTHORIZATION_FAILED)


def test_keda_reads_offsets_but_no_records(secure_broker: SecureBroker) -> None:
    records, errors = _read(secure_broker.kafka("keda"), ORDERS)
    assert records == 0
    assert errors & DENIED, errors
    error = _produce(secure_broker.kafka("keda"), ORDERS, b"keda writes")
    _assert_refused(error, KafkaError.TOPIC_AUTHORIZATION_FAILED)


def test_only_the_admin_creates_topics(secure_broker: SecureBroker) -> None:
    for identity in ("patient", "medicine", "keda", "observer"):
        admin = AdminClient(quiet(common_config(secure_broker.kafka(identity), "test-create")))
        future = admin.create_topics([NewTopic(f"rogue.{identity}", 1, 1)])[f"rogue.{identity}"]
        with pytest.raises(KafkaException) as refused:
            future.result(timeout=15)
        assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_wrong_password_is_refused(secure_broker: SecureBroker) -> None:
    wrong = secure_broker.kafka("medicine").model_copy(update={"kafka_sasl_password": "nope"})
    seen: list[KafkaError] = []
    admin = AdminClient(quiet(common_config(wrong, "test-wrong")) | {"error_cb": seen.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    admin.poll(1)  # serves the error callback
    assert KafkaError._AUTHENTICATION in {error.code() for error in seen}
    with pytest.raises(ConfigError, match="refused to authenticate user 'medicine'"):
        check_access(wrong, "medicine", ORDERS)


def test_no_credentials_are_refused(secure_broker: SecureBroker) -> None:
    anonymous = KafkaSettings(kafka_bootstrap=secure_broker.bootstrap)
    admin = AdminClient(quiet(common_config(anonymous, "test-anonymous")))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    records, _ = _read(anonymous, ORDERS, timeout_s=3)
    assert records == 0


def test_the_right_credentials_pass_the_services_start_check(secure_broker: SecureBroker) -> None:
    for identity in ("patient", "medicine"):
        check_access(secure_broker.kafka(identity), identity, ORDERS)
    with pytest.raises(ConfigError, match=r"does not allow user 'patient' .* topic tabs\.dlq"):
        check_access(secure_broker.kafka("patient"), "patient", DLQ)


@pytest.mark.parametrize("service", ["patient", "medicine"])
def test_a_service_with_a_bad_password_stops_with_one_sentence_and_exit_2(
    secure_broker: SecureBroker, service: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDPUBSUB_", "MEDICINE_"))}
    env |= secure_broker.credentials.environment(service)
    env |= {"MEDPUBSUB_KAFKA_BOOTSTRAP": secure_broker.bootstrap}
    env["MEDPUBSUB_KAFKA_SASL_PASSWORD"] = "not-the-password"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "medpubsub", service],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"refused to authenticate user '{service}'" in lines[0]
    assert time.monotonic() - started < 30


# -- the tools: identities from the state file ---------------------------------------------------


def test_locust_and_chaos_find_their_identity_in_the_state_file(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    """What `medpubsub up --secure` writes is enough for `locust` and the chaos probes."""
    path = tmp_path / "local.json"
    state.write(
        state.LocalState(
            owner_pid=os.getpid(),
            bootstrap=secure_broker.bootstrap,
            group_id="medicine",
            orders_topic=ORDERS,
            deliveries_topic=DELIVERIES,
            dlq_topic=DLQ,
            broker=None,
            kafka_data_dir=None,
            patients=[],
            makers=[],
            updated_at_ns=time.time_ns(),
            credentials_file=str(secure_broker.credentials_file),
        ),
        path,
    )
    seen = target.kafka_settings(None, str(path), identity="observer")
    assert seen.kafka_sasl_username == "observer"
    assert actions.wait_for_broker(timeout_s=30, state_file=str(path)) < 30  # as keda
    assert probes.no_duplicate_tabs(window_s=600, state_file=str(path))  # as observer
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDPUBSUB_", "ORBITAL_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile()), "--headless", "-u", "1",
         "-t", "4s"],
        env=env | {"MEDPUBSUB_STATE_FILE": str(path), "ORBITAL_PATIENT_ID": "locust-secure"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    with OffsetReader(secure_broker.kafka("keda"), "medicine", ORDERS) as reader:
        assert sum(p.end for p in reader.partitions()) >= 3  # the patients' orders are in


# -- usage: only the embedded broker is secured ----------------------------------------------------


def test_secure_with_a_broker_of_your_own_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--medpubsub-secure", "--medpubsub-kafka=127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--medpubsub-secure secures the embedded broker*"])


@pytest.mark.parametrize("command", ["up", "demo"])
def test_the_commands_refuse_secure_with_kafka_in_one_sentence(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "medpubsub", command, "--secure", "--kafka", "127.0.0.1:9"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"medpubsub {command}: --secure secures the embedded broker; it cannot be used with "
        "--kafka."
    ]
