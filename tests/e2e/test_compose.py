"""docker-compose.yml deploys what the end-to-end suite tests.

The compose file must validate, and its Airflow services must run the same
commands, executor, settings and demo connections as the e2e deployments, so
that a green e2e suite says something about ``docker compose up``. With
Debian's ``docker-compose`` installed the file is validated and resolved by it
(no Docker engine needed); without it the YAML is checked as written.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from frontier_provider.config import EventSettings
from frontier_provider.demo.setup import demo_connections
from tests.e2e.harness import CELERY_WORKER, COMPONENTS, DEPLOYMENT_SETTINGS, REPO, AirflowStack

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
# The processes that talk to Kafka: the triggerer runs the journal watcher, the workers publish.
KAFKA_CLIENTS = {"airflow-triggerer", "airflow-worker"}


def subcommand(args: tuple[str, ...] | list[str]) -> str:
    """The ``airflow`` subcommand of a command line, options left out (``celery worker``)."""
    words = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    return " ".join(words)


def command_words(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def entrypoint_words(service: dict) -> list[str]:
    entrypoint = service.get("entrypoint", [])
    return shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file: as ``docker-compose config`` resolves it when installed, else as written."""
    binary = shutil.which("docker-compose")
    if binary is None:
        return yaml.safe_load(COMPOSE_FILE.read_text())
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"docker-compose config refused the file:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def e2e_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment the e2e suite gives its CeleryExecutor deployment (nothing is started)."""
    stack = AirflowStack(name="compose-check", executor="CeleryExecutor")
    return stack.environment(tmp_path_factory.mktemp("home"), "postgresql+psycopg2://airflow@db:5432/airflow")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # KEY=value form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def dependencies(service: dict) -> dict[str, str]:
    """The services a service waits for, by the condition it waits for (a list waits for the start)."""
    depends_on = service.get("depends_on", {})
    if isinstance(depends_on, list):
        return dict.fromkeys(depends_on, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends_on.items()}


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """A Kafka listener list (``PLAINTEXT://kafka:9092,CONTROLLER://:9093``) by listener name."""
    parsed = {}
    for listener in value.split(","):
        name, address = listener.strip().split("://")
        host, port = address.rsplit(":", 1)
        parsed[name] = (host, int(port))
    return parsed


def connection(service: dict, conn_id: str) -> dict:
    return json.loads(environment(service)[f"AIRFLOW_CONN_{conn_id.upper()}"])


def test_compose_has_the_whole_stack(compose: dict) -> None:
    assert set(compose["services"]) >= {
        *AIRFLOW_SERVICES,
        "airflow-init",
        "postgres",
        "redis",
        "frontier-api",
        "kafka",
        "kafka-init",
    }


def test_airflow_services_run_the_commands_the_e2e_suite_runs(compose: dict) -> None:
    services = compose["services"]
    in_compose = {subcommand(command_words(services[name])) for name in AIRFLOW_SERVICES}
    in_e2e = {subcommand(args) for args in COMPONENTS.values()} | {subcommand(CELERY_WORKER)}
    assert in_compose == in_e2e == {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"}


def test_airflow_services_share_the_e2e_deployment_settings(compose: dict, e2e_environment: dict) -> None:
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = environment(compose["services"][name])
        missing = [key for key in DEPLOYMENT_SETTINGS if key not in env]
        assert missing == [], f"{name} lacks {missing}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert [key for key in DEPLOYMENT_SETTINGS if key not in e2e_environment] == []
    assert e2e_environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_demo_connections_point_into_the_demo_volume(compose: dict) -> None:
    worker = compose["services"]["airflow-worker"]
    env = environment(worker)
    mounts = [
        volume["target"] if isinstance(volume, dict) else volume.split(":")[1] for volume in worker["volumes"]
    ]
    for conn_id, spec in demo_connections(Path("/opt/airflow/demo")).items():
        composed = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert composed["conn_type"] == json.loads(spec)["conn_type"]
        path = composed["host"]
        assert any(path.startswith(f"{mount}/") for mount in mounts), f"{conn_id}: {path} is in no volume"
    frontier = json.loads(env["AIRFLOW_CONN_FRONTIER_DEFAULT"])
    api_keys = environment(compose["services"]["frontier-api"])["FRONTIER_API_KEYS"]
    assert (frontier["host"], frontier["port"], frontier["password"]) == ("frontier-api", 8000, api_keys)


def test_frontier_api_serves_the_reference_app(compose: dict) -> None:
    service = compose["services"]["frontier-api"]
    words = entrypoint_words(service) + command_words(service)
    assert words[:4] == ["python", "-m", "uvicorn", "frontier_provider.server:app"]
    assert words[words.index("--port") + 1] == "8000"


def test_init_builds_the_demo_and_the_database(compose: dict) -> None:
    init = compose["services"]["airflow-init"]
    script_in_image = command_words(init)[-1]
    dockerfile = DOCKERFILE.read_text()
    copied = re.search(r"^COPY .*docker/(\S+) (\S+)$", dockerfile, re.MULTILINE)
    assert copied is not None
    assert copied[2] == script_in_image
    script = (REPO / "docker" / copied[1]).read_text()
    for step in ("build_demo_ledger", "airflow db migrate", "airflow pools set tableau 1"):
        assert step in script


def test_image_is_the_official_airflow_image_of_the_tested_version(compose: dict) -> None:
    import airflow

    dockerfile = DOCKERFILE.read_text()
    version = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert version is not None
    assert version[1] == airflow.__version__
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}", dockerfile, re.MULTILINE)
    assert "constraints.txt" in dockerfile
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert compose["services"][name]["build"]["dockerfile"] == "docker/Dockerfile"


def test_every_airflow_service_finds_the_entities_file_in_its_dags_folder(compose: dict) -> None:
    # The image installs the package from its wheel (site-packages): the entities file is found through
    # [core] dags_folder, which must be where ./dags is mounted (tests/integration/test_wheel_install.py
    # parses the DAGs in that layout).
    assert (REPO / "dags" / "config" / "frontier_entities.yaml").is_file()
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        service = compose["services"][name]
        env = environment(service)
        mounts = {
            (volume["target"] if isinstance(volume, dict) else volume.split(":")[1]): (
                volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            )
            for volume in service["volumes"]
        }
        dags_folder = env["AIRFLOW__CORE__DAGS_FOLDER"]
        assert (COMPOSE_FILE.parent / mounts[dags_folder]).resolve() == (REPO / "dags").resolve(), name
        entities_file = env.get("FRONTIER_ENTITIES_FILE")
        assert entities_file is None or entities_file.startswith(f"{dags_folder}/"), name


def test_kafka_is_a_single_node_kraft_broker_the_airflow_services_reach_by_name(compose: dict) -> None:
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:(3\.9|4\.\d+)\.\d+", kafka["image"]), kafka["image"]
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(bound) <= set(protocols)
    assert controller in bound
    assert controller not in advertised
    # The client listener is advertised under the service's name, on the port it is bound to.
    assert advertised == {"PLAINTEXT": ("kafka", 9092)}
    assert bound["PLAINTEXT"][1] == 9092
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{bound[controller][1]}"
    for setting in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[setting] == "1", setting
    assert "localhost:9092" in kafka["healthcheck"]["test"]
    mounts = [
        volume["target"] if isinstance(volume, dict) else volume.split(":")[1] for volume in kafka["volumes"]
    ]
    assert env["KAFKA_LOG_DIRS"] in mounts
    assert kafka["restart"] == "always"


def test_kafka_connection_reaches_the_broker_as_the_event_driven_close_needs(compose: dict) -> None:
    services = compose["services"]
    advertised = listeners(environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])["PLAINTEXT"]
    events = EventSettings()
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        kafka = connection(services[name], events.kafka_conn_id)
        assert kafka["conn_type"] == "kafka", name
        extra = kafka["extra"]
        assert extra["bootstrap.servers"] == "{}:{}".format(*advertised), name
        # settings.events requires it (frontier_provider/config.py: EventSettings.kafka_conn_id).
        assert extra["enable.auto.commit"] == "false", name
        assert extra["group.id"], name


def test_events_db_connection_is_the_postgres_service_database(compose: dict) -> None:
    services = compose["services"]
    postgres = environment(services["postgres"])
    database = (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        events_db = connection(services[name], EventSettings().state_conn_id)
        address = (events_db["conn_type"], events_db["host"], events_db["port"])
        assert address == ("postgres", "postgres", 5432), name
        assert (events_db["login"], events_db["password"], events_db["schema"]) == database, name


def test_kafka_init_creates_the_close_topics_before_the_kafka_clients_start(compose: dict) -> None:
    services = compose["services"]
    init = services["kafka-init"]
    assert init["image"] == services["kafka"]["image"]
    assert dependencies(init) == {"kafka": "service_healthy"}
    assert "restart" not in init or init["restart"] == "no"
    created = {}
    for line in command_words(init)[-1].splitlines():
        words = shlex.split(line)
        if words and words[0].endswith("/kafka-topics.sh"):
            assert "--if-not-exists" in words, line
            assert words[words.index("--bootstrap-server") + 1] == "kafka:9092", line
            created[words[words.index("--topic") + 1]] = int(words[words.index("--partitions") + 1])
    events = EventSettings()
    assert set(created) == set(events.topics().values())
    assert created[events.journal_topic] == 3
    for name in KAFKA_CLIENTS:
        assert dependencies(services[name]).get("kafka-init") == "service_completed_successfully", name
