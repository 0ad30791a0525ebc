"""The webhook's rules without I/O: the SSRF policy, the retry schedule, secret rotation, the
loop rule (which failed message announces what), and the Standard Webhooks signature checked
with the ``standardwebhooks`` package."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from vcs_notifier.webhook_domain import (
    ROTATION_OVERLAP,
    RetryPolicy,
    SigningSecret,
    WebhookMessage,
    WebhookRegistration,
    carries_credentials,
)
from vcs_notifier.webhook_guard import IPAddress, NetworkPolicy, UnsafeUrl, parse_networks
from vcs_notifier.webhooks import new_secret, signature_headers
from vcs_shared.events import (
    EVENT_TYPES,
    CredentialsFailed,
    Event,
    RoomAssigned,
    RoomReassigned,
    Subject,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def resolving_to(*addresses: str) -> NetworkPolicy:
    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    return NetworkPolicy(resolver=resolver)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.1.10", "private"),
        ("172.16.0.5", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "not a public"),
    ],
)
async def test_internal_addresses_are_refused(address: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        await resolving_to(address).check("https://hooks.example.go.th/vcs")


async def test_one_internal_address_among_public_ones_is_refused() -> None:
    with pytest.raises(UnsafeUrl, match="loopback"):
        await resolving_to("8.8.8.8", "93.184.216.34", "127.0.0.1").check("https://x.example/")


async def test_a_public_address_passes_and_is_the_one_to_connect_to() -> None:
    target = await resolving_to("93.184.216.34").check("https://hooks.example.com:8443/in")
    assert (target.host, target.port, str(target.address)) == (
        "hooks.example.com",
        8443,
        "93.184.216.34",
    )


async def test_allowed_networks_open_internal_addresses_and_plain_http() -> None:
    policy = NetworkPolicy(allowed=parse_networks("127.0.0.0/8, 10.0.0.0/8"))
    target = await policy.check("http://127.0.0.1:9000/hook")
    assert str(target.address) == "127.0.0.1"
    with pytest.raises(UnsafeUrl, match="private"):
        await policy.check("https://192.168.0.1/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "must start with https"),
        ("http://93.184.216.34/", "must start with https"),
        ("https://user:pw@example.com/", "user name"),
        ("https:///nohost", "no host"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com/" + "a" * 2001, "longer than"),
    ],
)
async def test_malformed_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        await resolving_to("93.184.216.34").check(url)


def test_a_bad_cidr_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        parse_networks("127.0.0.0/8,10.0.0.0/33")


def test_backoff_doubles_with_jitter_and_stops_at_the_window() -> None:
    policy = RetryPolicy(
        window=timedelta(minutes=10), initial=timedelta(seconds=10), jitter=lambda: 1.0
    )
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    low = RetryPolicy(window=timedelta(hours=1), jitter=lambda: 0.0)
    assert low.delay(3).total_seconds() == 20  # at least half of the ceiling
    capped = RetryPolicy(window=timedelta(days=1), ceiling=timedelta(hours=1), jitter=lambda: 1.0)
    assert capped.delay(30) == timedelta(hours=1)
    assert policy.next_try(NOW, 1, NOW) == NOW + timedelta(seconds=10)
    assert policy.next_try(NOW, 5, NOW + timedelta(minutes=9)) is None  # past the window


def test_rotation_keeps_the_old_secret_for_the_overlap_then_drops_it() -> None:
    first = WebhookRegistration("4701", "47", "https://a.example/", (SigningSecret("s1"),), NOW)
    rotated = first.rotated("https://b.example/", "s2", NOW)
    assert rotated.url == "https://b.example/"
    assert rotated.signing_secrets(NOW) == ["s2", "s1"]
    assert rotated.signing_secrets(NOW + ROTATION_OVERLAP) == ["s2"]
    again = rotated.rotated("https://b.example/", "s3", NOW + ROTATION_OVERLAP)
    assert again.signing_secrets(NOW + ROTATION_OVERLAP) == ["s3", "s2"]


def test_both_signatures_verify_with_the_standardwebhooks_package() -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_")
    assert old != new
    body = '{"specversion":"1.0","id":"e-1"}'
    at = datetime.now(UTC)
    headers = signature_headers([new, old], "e-1", at, body)
    assert headers["webhook-id"] == "e-1"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"specversion": "1.0", "id": "e-1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + " ", headers)


SUBJECT = Subject(request_id="r-1", province_code="47", district_code="4701")


def message_of(event_name: str, *, credentials: bool) -> WebhookMessage:
    return WebhookMessage(
        message_id=f"id-{event_name}",
        request_id="r-1",
        province_code="47",
        district_code="4701",
        event_name=event_name,
        body="{}",
        first_due=NOW,
        carries_credentials=credentials,
    )


def test_only_the_credentials_events_carry_them() -> None:
    carrying = {
        event_type.name
        for event_type in EVENT_TYPES.values()
        if carries_credentials(event_type.model_construct(**SUBJECT))
    }
    assert carrying == {RoomAssigned.name, RoomReassigned.name}


def test_the_credentials_message_failing_for_good_is_one_credentials_failed() -> None:
    [failed] = message_of("room.assigned", credentials=True).failure_events("webhook: down")

    assert isinstance(failed, CredentialsFailed)
    assert (failed.request_id, failed.channel, failed.error) == ("r-1", "webhook", "webhook: down")
    assert failed.routing_key() == "credentials.failed.47.4701"


@pytest.mark.parametrize(
    "event_name",
    sorted(e.name for e in EVENT_TYPES.values() if e not in (RoomAssigned, RoomReassigned)),
)
def test_any_other_message_failing_announces_nothing(event_name: str) -> None:
    assert message_of(event_name, credentials=False).failure_events("webhook: down") == ()


def test_a_dead_webhook_ends_the_chain_after_one_credentials_failed() -> None:
    """Every event goes to the webhook, what a failure announces too: on a receiver that never
    answers, follow the chain (each announced event becomes a message that fails in turn)."""
    waiting = [message_of("room.assigned", credentials=True)]
    announced: list[Event] = []
    for _ in range(100):  # a loop would still be going
        if not waiting:
            break
        message = waiting.pop()
        events = message.failure_events("webhook: down")
        announced.extend(events)
        waiting.extend(message_of(e.name, credentials=carries_credentials(e)) for e in events)
    assert waiting == []
    assert [e.name for e in announced] == ["credentials.failed"]
