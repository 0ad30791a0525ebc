"""docker-compose.yml and the Dockerfile, checked by care since no Docker engine runs here.

The checks are the mistakes that would only show at ``docker compose up``: a
required setting missing from a service's environment, a misspelt ``VCS_``
variable that no settings class reads, a mounted file that is not in the repo,
an unpinned image, a dependency on a service that does not exist.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from vcs_allocator.settings import AllocatorSettings
from vcs_desk.settings import DeskSettings
from vcs_intake.settings import IntakeSettings
from vcs_intake.web.assets import VENDOR
from vcs_notifier.settings import NotifierSettings
from vcs_tools.contract import rendered_files
from vcs_tools.rabbitmq import SERVICE_USERS, password_variable

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[BaseSettings]] = {
    "intake": IntakeSettings,
    "allocator": AllocatorSettings,
    "notifier": NotifierSettings,
    "desk": DeskSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


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
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_only_the_intake_is_published_among_the_services(compose: dict[str, Any]) -> None:
    """Internal APIs (the allocator's admin API, the desk) are reached through the intake."""
    published = {name for name in SETTINGS if compose["services"][name].get("ports")}
    urls = compose["services"]["intake"]["environment"]

    assert published == {"intake"}
    assert urls["VCS_ALLOCATOR_URL"] == "http://allocator:8001"
    assert urls["VCS_DESK_URL"] == "http://desk:8002"
    assert urls["VCS_NOTIFIER_URL"] == "http://notifier:8003"


@pytest.mark.parametrize(("service", "port"), [("desk", 8002), ("notifier", 8003)])
def test_internal_apis_listen_for_the_intake_and_are_checked_for_health(
    compose: dict[str, Any], service: str, port: int
) -> None:
    """An internal API listens on the compose network (not only on its own loopback) at the
    port the intake forwards to, and its /healthz is what compose checks."""
    definition = compose["services"][service]
    host_variable = f"VCS_{service.upper()}_HOST"

    assert definition["environment"][host_variable] == "0.0.0.0"
    assert f"127.0.0.1:{port}/healthz" in " ".join(definition["healthcheck"]["test"])
    assert SETTINGS[service].model_fields[f"{service}_port"].default == port


def test_every_broker_user_gets_its_password(compose: dict[str, Any]) -> None:
    provision = compose["services"]["rabbitmq-provision"]["environment"]
    example = (ROOT / "deploy" / "compose.env.example").read_text()

    for user in SERVICE_USERS:
        assert password_variable(user) in provision, user
        assert f"{password_variable(user)}=" in example, user


def test_secrets_come_from_the_environment_only(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("PASSWORD", "SECRET", "KEYS"):
        for line in text.splitlines():
            key, _, value = line.strip().partition(":")
            if secret in key and value.strip():
                assert "${" in value, f"literal secret in compose: {line.strip()}"


def test_mongo_runs_as_a_replica_set(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]

    assert "--replSet" in mongo["command"]
    for service in SETTINGS:
        url = compose["services"][service]["environment"].get("VCS_MONGODB_URL", "")
        assert "replicaSet=" in url


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
