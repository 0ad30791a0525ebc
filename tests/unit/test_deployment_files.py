"""The compose files and the Dockerfile, checked by care since no Docker engine runs here.

Both deployments are checked: ``docker-compose.yml`` alone (one RabbitMQ node, a one-member
replica set) and with ``deploy/cluster/compose.yml`` over it (three nodes, three members),
merged the way ``docker compose -f … -f …`` merges them. The checks are the mistakes that
would only show at ``docker compose up``: a required setting missing from a service's
environment, a misspelt ``VCS_`` variable that no settings class reads, a topology item a
service uses that the broker never loads, a mounted file that is not in the repo, an unpinned
image, a service without a health check or a restart policy, a start before what it needs is
ready, a port published that should not be, a secret written into a file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from vcs_allocator.settings import AllocatorSettings
from vcs_desk.settings import DeskSettings
from vcs_intake.settings import IntakeSettings
from vcs_intake.web.assets import VENDOR
from vcs_notifier.settings import NotifierSettings
from vcs_shared.broker_nodes import broker_urls
from vcs_shared.settings import EXAMPLE_SECRET
from vcs_shared.store import database_name
from vcs_shared.topology import AUDIT_CONSUMER, CONSUMERS, PROVINCE_CODES, Topology
from vcs_tools.contract import rendered_files
from vcs_tools.devstack import METRICS_PORTS
from vcs_tools.rabbitmq import SERVICE_USERS, password_variable

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[BaseSettings]] = {
    "intake": IntakeSettings,
    "allocator": AllocatorSettings,
    "notifier": NotifierSettings,
    "desk": DeskSettings,
}


COMPOSE_FILES = {
    "single": ("docker-compose.yml",),
    "cluster": ("docker-compose.yml", "deploy/cluster/compose.yml"),
}
"""The deployments: ``docker compose -f <each file> ...``, later files overriding earlier ones."""
ONE_SHOT_CONDITION = "service_completed_successfully"
EXAMPLE_ENV = ROOT / "deploy" / "compose.env.example"


def merge(base: Any, override: Any, key: str = "") -> Any:
    """What ``docker compose -f base -f override`` makes of two values: mappings merge key by
    key; a service's ``volumes`` merge by mount target and ``ports`` add up; any other list
    (``command``, a health check's ``test``) or scalar is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key == "volumes":
        by_target = {mount_target(v): v for v in base} | {mount_target(v): v for v in override}
        return list(by_target.values())
    if isinstance(base, list) and isinstance(override, list) and key == "ports":
        return base + [p for p in override if p not in base]
    return override


def mount_target(volume: str) -> str:
    return volume.split(":")[1]


def load(deployment: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in COMPOSE_FILES[deployment]:
        merged = merge(merged, yaml.safe_load((ROOT / name).read_text()))
    return merged


@pytest.fixture(scope="module", params=sorted(COMPOSE_FILES))
def compose(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each deployment as compose would see it (one node each, or the cluster)."""
    return load(request.param)


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return load("cluster")


def env_names(settings: type[BaseSettings]) -> tuple[set[str], set[str]]:
    """(all VCS_ variables the class reads, the ones it requires)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = {f"{prefix}{name}".upper() for name in settings.model_fields}
    required = {
        f"{prefix}{name}".upper()
        for name, field in settings.model_fields.items()
        if field.is_required()
    }
    return names, required


def one_shots(compose: dict[str, Any]) -> set[str]:
    """Services that run once and exit (provisioning): others wait for them to complete."""
    return {
        dependency
        for service in compose["services"].values()
        for dependency, condition in service.get("depends_on", {}).items()
        if condition["condition"] == ONE_SHOT_CONDITION
    }


def substituted(value: str) -> str:
    """A compose value with every ``${VAR...}`` replaced by ``VAR``'s name in angle brackets,
    as a stand-in for its secret."""
    return re.sub(r"\$\{(\w+)[^}]*\}", r"<\1>", value)


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_each_service_gets_every_required_setting_and_no_unknown_one(
    compose: dict[str, Any], service: str
) -> None:
    environment = compose["services"][service]["environment"]
    known, required = env_names(SETTINGS[service])

    given = {key for key in environment if key.startswith("VCS_")}
    assert required <= given, f"{service} lacks {sorted(required - given)}"
    assert given <= known, f"{service} sets settings nobody reads: {sorted(given - known)}"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_each_service_builds_from_the_dockerfile_for_itself(
    compose: dict[str, Any], service: str
) -> None:
    build = compose["services"][service]["build"]

    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    assert build["args"]["SERVICE"] == service
    assert (ROOT / "services" / service / f"vcs_{service}" / "__main__.py").is_file()


def test_images_are_pinned_to_a_release(compose: dict[str, Any]) -> None:
    images = {name: s["image"] for name, s in compose["services"].items() if "image" in s}

    assert re.fullmatch(r"rabbitmq:4\.\d+\.\d+-management", images["rabbitmq"])
    assert re.fullmatch(r"mongo:8\.\d+\.\d+", images["mongo"])
    for name, image in images.items():
        assert ":" in image, f"{name} is not pinned"
        assert not image.endswith(":latest"), f"{name} uses latest"


def test_mounted_files_exist_and_dependencies_are_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] in ("service_healthy", ONE_SHOT_CONDITION), (
                f"{name} starts before {dependency} is ready"
            )
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_every_long_running_service_is_checked_and_restarted(compose: dict[str, Any]) -> None:
    """docker compose knows when each is ready (``healthcheck``) and starts it again after a
    crash or a reboot (``restart``); the provisioning steps run once."""
    once = one_shots(compose)
    for name, service in compose["services"].items():
        if name in once:
            assert service["restart"] == "no", name
            assert "healthcheck" not in service, name
        else:
            assert service.get("restart") in ("unless-stopped", "always"), name
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_services_start_in_order(compose: dict[str, Any]) -> None:
    """Users exist before a service signs in with them; the front door opens last."""
    services = compose["services"]
    for name in SETTINGS:
        waits_for = services[name]["depends_on"]
        assert waits_for["rabbitmq-provision"]["condition"] == ONE_SHOT_CONDITION, name
        assert waits_for["mongo-provision"]["condition"] == ONE_SHOT_CONDITION, name
    for owner in ("allocator", "notifier", "desk"):
        assert services["intake"]["depends_on"][owner]["condition"] == "service_healthy"
    assert services["notifier"]["depends_on"]["mail"]["condition"] == "service_healthy"
    assert services["mongo"]["depends_on"]["mongo-keyfile"]["condition"] == ONE_SHOT_CONDITION
    assert services["mongo-provision"]["depends_on"]["mongo"]["condition"] == "service_healthy"


def test_nothing_but_the_intake_is_published(compose: dict[str, Any]) -> None:
    """Not RabbitMQ's AMQP port, not MongoDB, not the mail sink (its mails hold passcodes),
    not the internal APIs: they are reached on the compose network, operators through the
    intake."""
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    urls = compose["services"]["intake"]["environment"]

    assert published == {"intake"}
    assert compose["services"]["intake"]["ports"] == ["8000:8000"]
    assert urls["VCS_ALLOCATOR_URL"] == "http://allocator:8001"
    assert urls["VCS_DESK_URL"] == "http://desk:8002"
    assert urls["VCS_NOTIFIER_URL"] == "http://notifier:8003"


INTERNAL_APIS = {  # service: (its host variable, its port setting, the port)
    "allocator": ("VCS_ADMIN_HOST", "admin_port", 8001),
    "desk": ("VCS_DESK_HOST", "desk_port", 8002),
    "notifier": ("VCS_NOTIFIER_HOST", "notifier_port", 8003),
}


@pytest.mark.parametrize("service", sorted(INTERNAL_APIS))
def test_internal_apis_listen_for_the_intake_and_are_checked_for_health(
    compose: dict[str, Any], service: str
) -> None:
    """An internal API listens on the compose network (not only on its own loopback) at the
    port the intake forwards to, and its /healthz is what compose checks."""
    definition = compose["services"][service]
    host_variable, port_setting, port = INTERNAL_APIS[service]

    assert definition["environment"][host_variable] == "0.0.0.0"
    assert f"127.0.0.1:{port}/healthz" in " ".join(definition["healthcheck"]["test"])
    assert SETTINGS[service].model_fields[port_setting].default == port


def test_the_intake_is_checked_for_health_on_its_own_port(compose: dict[str, Any]) -> None:
    intake = compose["services"]["intake"]

    assert "127.0.0.1:8000/healthz" in " ".join(intake["healthcheck"]["test"])
    assert intake["environment"]["VCS_PORT"] == "8000"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_each_service_serves_its_metrics_on_a_port_of_its_own(
    compose: dict[str, Any], service: str
) -> None:
    """Prometheus reaches ``/metrics`` over the compose network (``<service>:<port>``, the
    port ``make run`` gives it), never on the public or the internal API's port, and the port
    is not published on the host."""
    definition = compose["services"][service]
    environment = definition["environment"]
    api_ports = {"8000", *(str(port) for _, _, port in INTERNAL_APIS.values())}

    assert environment["VCS_METRICS_HOST"] == "0.0.0.0"
    assert int(environment["VCS_METRICS_PORT"]) == METRICS_PORTS[service]
    assert environment["VCS_METRICS_PORT"] not in api_ports
    published = " ".join(definition.get("ports", []))
    assert environment["VCS_METRICS_PORT"] not in published


def test_every_broker_user_gets_its_password(compose: dict[str, Any]) -> None:
    provision = compose["services"]["rabbitmq-provision"]["environment"]
    example = EXAMPLE_ENV.read_text()

    for user in SERVICE_USERS:
        assert password_variable(user) in provision, user
        assert f"{password_variable(user)}=" in example, user
        for url in broker_urls(
            substituted(compose["services"][user]["environment"]["VCS_AMQP_URL"])
        ):
            parsed = urlsplit(url)
            assert parsed.username == user
            assert parsed.password == f"<{password_variable(user)}>"


def test_mongodb_requires_authentication_with_a_user_per_service(
    compose: dict[str, Any],
) -> None:
    """Members authenticate each other with a keyfile, people and services with a password;
    each service signs in as itself, and the init script gives it its own database only."""
    services = compose["services"]
    script = (ROOT / "deploy" / "mongo" / "create-users.js").read_text()
    provision = services["mongo-provision"]["environment"]
    example = EXAMPLE_ENV.read_text()
    members = [name for name, s in services.items() if s.get("image", "").startswith("mongo:")]

    for name in members:
        if name not in one_shots(compose):
            assert "--keyFile" in services[name]["command"], name
    assert services["mongo"]["environment"]["MONGO_INITDB_ROOT_PASSWORD"].startswith("${")
    assert "VCS_MONGO_KEYFILE=" in example
    for service in SETTINGS:
        variable = f"VCS_MONGO_{service.upper()}_PASSWORD"
        url = urlsplit(substituted(services[service]["environment"]["VCS_MONGODB_URL"]))
        assert url.username == service, service
        assert url.password == f"<{variable}>", service
        assert "authSource=admin" in url.query, service
        assert variable in provision, service
        assert f"{variable}=" in example, service
        assert f'"{service}"' in script, f"create-users.js makes no user {service}"
    assert 'role: "readWrite", db: `${namespace}_${service}`' in script
    namespace = services["mongo-provision"]["environment"]["VCS_NAMESPACE"]
    assert namespace == services["intake"]["environment"]["VCS_NAMESPACE"]
    assert database_name(namespace, "intake") == f"{namespace}_intake"


def test_mongo_runs_as_a_replica_set(compose: dict[str, Any]) -> None:
    services = compose["services"]
    members = services["mongo"]["environment"]["VCS_MONGO_MEMBERS"].split(",")

    assert "--replSet" in services["mongo"]["command"]
    for member in members:
        host = member.split(":")[0]
        assert services[host]["hostname"] == host
        assert "--replSet" in services[host]["command"]
    for service in SETTINGS:
        url = urlsplit(substituted(services[service]["environment"]["VCS_MONGODB_URL"]))
        assert "replicaSet=rs0" in url.query
        assert url.netloc.rsplit("@", 1)[1].split(",") == members, service


def test_secrets_come_from_the_environment_only() -> None:
    for name in {file for files in COMPOSE_FILES.values() for file in files}:
        text = (ROOT / name).read_text()
        for secret in ("PASSWORD", "SECRET", "KEYS", "KEYFILE", "COOKIE"):
            for line in text.splitlines():
                key, _, value = line.strip().partition(":")
                if secret in key and value.strip():
                    assert "${" in value, f"literal secret in {name}: {line.strip()}"


def test_every_secret_compose_asks_for_is_in_the_example_with_a_refused_value() -> None:
    """``cp deploy/compose.env.example .env`` gives every variable compose requires, each
    with the example value that the services and provisioning scripts refuse."""
    example = dict(
        line.split("=", 1)
        for line in EXAMPLE_ENV.read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in {file for files in COMPOSE_FILES.values() for file in files}:
        for variable in re.findall(r"\$\{(\w+):\?", (ROOT / name).read_text()):
            assert example.get(variable) == EXAMPLE_SECRET, (name, variable)


def test_every_topology_item_a_service_uses_is_predeclared(compose: dict[str, Any]) -> None:
    """The services run with VCS_DECLARE_TOPOLOGY=false as least-privilege users: every
    exchange and queue they use must come from deploy/rabbitmq/definitions.json, which every
    RabbitMQ node loads."""
    definitions = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    exchanges = {e["name"] for e in definitions["exchanges"]}
    queues = {q["name"] for q in definitions["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    for service in SETTINGS:
        environment = compose["services"][service]["environment"]
        assert environment["VCS_DECLARE_TOPOLOGY"] == "false", service
        topology = Topology(environment["VCS_NAMESPACE"])
        # every service publishes its audit entries to the audit exchange
        assert {topology.exchange, topology.dead_exchange, topology.audit_exchange} <= exchanges
        if service in CONSUMERS:
            assert set(topology.consumed_queues(service)) <= queues, service
            assert topology.dead_letter_queue(service) in queues, service
            for event_type in CONSUMERS[service]:  # every province's events reach one queue
                for province in PROVINCE_CODES:
                    routing_key = f"{event_type.name}.{province}.{province}01"
                    reached = {
                        queue
                        for exchange, queue, key in bindings
                        if exchange == topology.exchange
                        and queue in topology.consumed_queues(service)
                        and _topic_matches(key, routing_key)
                    }
                    assert reached == {topology.queue_for(service, province)}, routing_key
    desk = Topology(compose["services"]["desk"]["environment"]["VCS_NAMESPACE"])
    assert desk.replay_exchange in exchanges
    assert desk.feed_stream in queues
    assert {desk.audit_queue, desk.dead_letter_queue(AUDIT_CONSUMER)} <= queues
    assert (desk.audit_exchange, desk.audit_queue, "#") in bindings
    nodes = [
        n for n, s in compose["services"].items() if s.get("hostname", "").startswith("rabbitmq")
    ]
    conf = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    for node in nodes:
        mounts = compose["services"][node]["volumes"]
        assert "./deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro" in mounts
        assert "./deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-vcs.conf:ro" in mounts


def test_the_cluster_has_three_rabbitmq_nodes_every_service_knows(
    cluster: dict[str, Any],
) -> None:
    services = cluster["services"]
    nodes = {n: s for n, s in services.items() if s.get("hostname", "").startswith("rabbitmq")}
    conf = (ROOT / "deploy" / "cluster" / "rabbitmq-cluster.conf").read_text()
    listed = re.findall(
        r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", conf, re.M
    )
    data = {mount_target_source(s["volumes"], "/var/lib/rabbitmq") for s in nodes.values()}
    cookie_mounts = {v.split(":")[0] for v in services["rabbitmq-cookie"]["volumes"]}

    assert len(nodes) == 3
    assert sorted(listed) == sorted(s["hostname"] for s in nodes.values())
    assert len(data) == 3, "each node needs its own data volume"
    assert data <= cookie_mounts, "every node gets the shared Erlang cookie"
    assert services["rabbitmq-provision"]["environment"]["VCS_RABBITMQ_NODES"].split() == [
        f"rabbit@{host}" for host in listed
    ]
    for node in nodes.values():
        assert (
            "./deploy/cluster/rabbitmq-cluster.conf:/etc/rabbitmq/conf.d/30-cluster.conf:ro"
            in (node["volumes"])
        )
    for service in SETTINGS:
        urls = broker_urls(substituted(services[service]["environment"]["VCS_AMQP_URL"]))
        assert sorted(str(urlsplit(u).hostname) for u in urls) == sorted(listed), service
    first = {
        urlsplit(
            broker_urls(substituted(services[name]["environment"]["VCS_AMQP_URL"]))[0]
        ).hostname
        for name in SETTINGS
    }
    assert len(first) == 3, "the services' connections are not spread over the nodes"


def test_the_cluster_has_a_three_member_replica_set(cluster: dict[str, Any]) -> None:
    services = cluster["services"]
    members = services["mongo"]["environment"]["VCS_MONGO_MEMBERS"].split(",")

    assert len(members) == 3
    assert (
        len(
            {mount_target_source(services[m.split(":")[0]]["volumes"], "/data/db") for m in members}
        )
        == 3
    )
    for member in members:
        assert "mongo-keys:/keys:ro" in services[member.split(":")[0]]["volumes"]


def mount_target_source(volumes: list[str], target: str) -> str:
    return next(v.split(":")[0] for v in volumes if mount_target(v) == target)


def test_dockerfile_copies_what_exists_and_pins_its_base() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()

    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", dockerfile)
    assert "ARG SERVICE" in dockerfile
    assert "uv sync --frozen" in dockerfile
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, flags=re.MULTILINE):
        assert (ROOT / source).exists(), f"COPY of missing {source}"


def test_the_image_ships_the_contract_where_its_intake_reads_it() -> None:
    """Every file ``make contract`` writes into docs/ is copied into the runtime image, into
    the folder ``VCS_CONTRACT_DIR`` names there (the intake refuses to start without them)."""
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    runtime = dockerfile.split(" AS runtime", 1)[1]
    found = re.search(r"VCS_CONTRACT_DIR=(\S+)", runtime)
    assert found is not None, "the image does not tell the intake where its contract is"
    contract_dir = found[1]
    copies = re.findall(r"^COPY (?!--from)(\S+) (\S+)$", runtime, flags=re.MULTILINE)

    def in_image(repo_path: str) -> str | None:
        for source, target in copies:
            if repo_path == source:
                return str(target)
            if repo_path.startswith(f"{source.rstrip('/')}/"):
                return f"{target.rstrip('/')}{repo_path.removeprefix(source.rstrip('/'))}"
        return None

    for relative in rendered_files():
        assert in_image(f"docs/{relative}") == f"{contract_dir}/{relative}", relative


def test_the_image_carries_every_browser_asset_the_intake_serves() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    lock = ROOT / "services" / "intake" / "web-assets" / "package-lock.json"

    assert re.search(r"ARG NODE_IMAGE=node:\d+\.\d+\.\d+-", dockerfile)
    assert "npm ci" in dockerfile
    assert lock.is_file()
    for package, _probe in VENDOR.values():
        copied = f"/assets/node_modules/{package} /app/web-assets/node_modules/{package}"
        assert copied in dockerfile, f"the image lacks {package}"
    assert "VCS_WEB_ASSETS_DIR=/app/web-assets/node_modules" in dockerfile


def _topic_matches(binding_key: str, routing_key: str) -> bool:
    """A topic exchange's match: ``*`` is one word, ``#`` any number of words."""

    def match(key: list[str], words: list[str]) -> bool:
        if not key:
            return not words
        if key[0] == "#":
            return any(match(key[1:], words[i:]) for i in range(len(words) + 1))
        return bool(words) and key[0] in ("*", words[0]) and match(key[1:], words[1:])

    return match(binding_key.split("."), routing_key.split("."))
