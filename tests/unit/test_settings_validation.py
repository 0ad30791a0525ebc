"""What every service's settings refuse at start: example secrets and broker lists that are not
lists of AMQP URLs; and what they accept: the nodes of a cluster, comma-separated."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from vcs_allocator.settings import AllocatorSettings
from vcs_desk.settings import DeskSettings
from vcs_intake.settings import IntakeSettings
from vcs_intake.web.single_sign_on import OidcProvider
from vcs_notifier.settings import NotifierSettings
from vcs_shared.broker_nodes import BrokerUrlError, broker_urls
from vcs_shared.credentials import new_key

pytestmark = pytest.mark.unit

SERVICES: dict[str, type[BaseSettings]] = {
    "intake": IntakeSettings,
    "allocator": AllocatorSettings,
    "notifier": NotifierSettings,
    "desk": DeskSettings,
}
REAL_SECRET = "a-real-secret-of-at-least-32-bytes-0123456789"
CLUSTER = (
    "amqp://allocator:s3cret@rabbit-1:5672/,amqp://allocator:s3cret@rabbit-2:5672/,"
    "amqp://allocator:s3cret@rabbit-3:5672/"
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Every setting any service requires, with real-looking values."""
    for key in list(os.environ):
        if key.startswith("VCS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VCS_AMQP_URL", "amqp://svc:s3cret@rabbitmq:5672/")
    monkeypatch.setenv("VCS_MONGODB_URL", "mongodb://svc:s3cret@mongo:27017/?replicaSet=rs0")
    monkeypatch.setenv("VCS_JWT_SECRET", REAL_SECRET)
    monkeypatch.setenv("VCS_CREDENTIALS_KEYS", new_key())
    return monkeypatch


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_starts_with_real_secrets(environment: pytest.MonkeyPatch, service: str) -> None:
    SERVICES[service]()


EXAMPLES = [
    ("VCS_JWT_SECRET", "change-me"),
    ("VCS_JWT_SECRET", "CHANGE-ME-to-something-at-least-32-bytes-long"),
    ("VCS_AMQP_URL", "amqp://intake:change-me@rabbitmq:5672/"),
    ("VCS_MONGODB_URL", "mongodb://intake:change-me@mongo:27017/?replicaSet=rs0"),
    ("VCS_CREDENTIALS_KEYS", "change-me"),
]


def reads(service: str) -> set[str]:
    return {f"VCS_{name}".upper() for name in SERVICES[service].model_fields}


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [(s, v, x) for s in sorted(SERVICES) for v, x in EXAMPLES if v in reads(s)],
)
def test_a_service_refuses_an_example_secret_naming_the_setting(
    environment: pytest.MonkeyPatch, service: str, variable: str, value: str
) -> None:
    settings = SERVICES[service]
    environment.setenv(variable, value)

    with pytest.raises(ValidationError) as refused:
        settings()

    message = str(refused.value)
    field = variable.removeprefix("VCS_").lower()
    assert variable in message or f"\n{field}\n" in message  # named, by its variable or field
    assert REAL_SECRET not in message  # the input (other secrets) is never repeated


def test_the_notifier_refuses_an_example_smtp_password(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("VCS_SMTP_PASSWORD", "change-me")

    with pytest.raises(ValidationError, match="VCS_SMTP_PASSWORD"):
        NotifierSettings()


def test_the_nodes_of_a_cluster_are_one_comma_separated_setting(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("VCS_AMQP_URL", CLUSTER)

    settings = AllocatorSettings()

    assert broker_urls(settings.amqp_url.get_secret_value()) == (
        "amqp://allocator:s3cret@rabbit-1:5672/",
        "amqp://allocator:s3cret@rabbit-2:5672/",
        "amqp://allocator:s3cret@rabbit-3:5672/",
    )


def test_spaces_around_the_commas_are_allowed() -> None:
    assert broker_urls(" amqp://a:b@x/ ,amqps://a:b@y:5671/") == (
        "amqp://a:b@x/",
        "amqps://a:b@y:5671/",
    )


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ("", "no broker URL"),
        ("amqp://a:b@x/,", "entry 2 of 2"),
        ("amqp://a:b@x/,http://a:hunter2@y/", "entry 2 of 2 ('…@y/')"),
        ("amqp//a:hunter2@x/", "entry 1 of 1 ('…@x/')"),
        ("rabbit-1:5672", "entry 1 of 1"),
    ],
)
def test_a_broker_list_with_a_bad_entry_is_refused_naming_it(setting: str, why: str) -> None:
    with pytest.raises(BrokerUrlError) as refused:
        broker_urls(setting)

    assert why in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_a_service_refuses_a_bad_broker_list_naming_the_setting(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("VCS_AMQP_URL", "amqp://a:hunter2@x/,amqp//a:hunter2@y/")

    with pytest.raises(ValidationError) as refused:
        IntakeSettings()

    assert "amqp_url" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_the_allocator_sets_zoom_passcodes_only_with_every_zoom_credential(
    environment: pytest.MonkeyPatch,
) -> None:
    assert AllocatorSettings().zoom_account() is None

    environment.setenv("VCS_ZOOM_ACCOUNT_ID", "acc-1")
    environment.setenv("VCS_ZOOM_CLIENT_ID", "client-1")
    with pytest.raises(ValidationError, match="VCS_ZOOM_CLIENT_SECRET"):
        AllocatorSettings()

    environment.setenv("VCS_ZOOM_CLIENT_SECRET", REAL_SECRET)
    account = AllocatorSettings().zoom_account()
    assert account is not None
    assert (account.account_id, account.client_id, account.client_secret) == (
        "acc-1",
        "client-1",
        REAL_SECRET,
    )
    assert account.api_url == "https://api.zoom.us/v2"


SINGLE_SIGN_ON = {
    "VCS_OIDC_ISSUER": "https://sso.dopa.example.go.th/realms/dopa",
    "VCS_OIDC_CLIENT_ID": "dopa-vcs",
    "VCS_OIDC_CLIENT_SECRET": "a-real-client-secret",
}


@pytest.mark.parametrize("left_out", sorted(SINGLE_SIGN_ON))
def test_single_sign_on_is_all_three_settings_or_none(
    environment: pytest.MonkeyPatch, left_out: str
) -> None:
    assert IntakeSettings().oidc_issuer is None  # off by default
    for key, value in SINGLE_SIGN_ON.items():
        environment.setenv(key, value)
    assert IntakeSettings().oidc_client_id == "dopa-vcs"
    environment.delenv(left_out)
    with pytest.raises(ValidationError) as refused:
        IntakeSettings()
    assert f"single sign-on is half configured: set {left_out}" in str(refused.value)
    assert "a-real-client-secret" not in str(refused.value)


def test_single_sign_on_is_the_provider_the_three_settings_name(
    environment: pytest.MonkeyPatch,
) -> None:
    assert IntakeSettings().single_sign_on() is None
    for key, value in SINGLE_SIGN_ON.items():
        environment.setenv(key, value)
    assert IntakeSettings().single_sign_on() == OidcProvider(
        issuer="https://sso.dopa.example.go.th/realms/dopa",
        client_id="dopa-vcs",
        client_secret="a-real-client-secret",
    )


def test_the_single_sign_on_secret_may_not_be_the_example(
    environment: pytest.MonkeyPatch,
) -> None:
    for key, value in {**SINGLE_SIGN_ON, "VCS_OIDC_CLIENT_SECRET": "change-me"}.items():
        environment.setenv(key, value)
    with pytest.raises(ValidationError, match="VCS_OIDC_CLIENT_SECRET"):
        IntakeSettings()
