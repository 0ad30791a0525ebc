"""The webhook and LINE channels against real local servers and the real store: signed
messages a receiver verifies with ``standardwebhooks``, the durable retry schedule (receiver
down, then up), giving up after the window with ``credentials.failed`` in the same write, the
address checked again at send time (DNS rebinding), and a LINE push the fake LINE accepts."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from tests.support.http_fakes import FakeLine, WebhookReceiver
from vcs_notifier.channels import Notice, PermanentFailure
from vcs_notifier.domain import Booking, Delivery, MailKind
from vcs_notifier.line import LineChannel, LineClient
from vcs_notifier.webhook_delivery import WebhookDispatcher
from vcs_notifier.webhook_domain import RetryPolicy, SigningSecret, WebhookRegistration
from vcs_notifier.webhook_guard import IPAddress, NetworkPolicy, parse_networks
from vcs_notifier.webhook_store import WITH_WEBHOOK_MAX_AGE, MongoWebhookStore
from vcs_notifier.webhooks import WebhookSender, new_secret
from vcs_shared.credentials import CredentialsSealer, MeetingCredentials
from vcs_shared.envelope import Envelope, decode, encode
from vcs_shared.events import Contact, Event, RoomAssigned
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration

LOOPBACK = NetworkPolicy(allowed=parse_networks("127.0.0.0/8"))
STARTS = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def store(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> AsyncIterator[MongoWebhookStore]:
    webhooks = MongoWebhookStore(
        mongo[database_name(namespace, "notifier")], CredentialsSealer(credentials_keys)
    )
    await webhooks.ensure_indexes()
    yield webhooks


def assignment(sealer: CredentialsSealer, request_id: str = "r-1") -> Envelope[Event]:
    event = RoomAssigned(
        request_id=request_id,
        province_code="47",
        district_code="4701",
        meeting_id="123456789",
        capacity=300,
        join_url="https://zoom.us/j/123456789",
        pool="province",
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=2),
        sealed_credentials=sealer.seal(
            MeetingCredentials(passcode="951357", join_url="https://zoom.us/j/123456789?pwd=x")
        ),
    )
    return decode(encode(event, source="allocator", correlation_id=request_id).body.encode())


async def register(store: MongoWebhookStore, url: str, *secrets: SigningSecret) -> None:
    await store.register(WebhookRegistration("4701", "47", url, secrets, datetime.now(UTC)))


def dispatcher(
    store: MongoWebhookStore, keys: str, window: timedelta, policy: NetworkPolicy = LOOPBACK
) -> WebhookDispatcher:
    retry = RetryPolicy(window=window, initial=timedelta(milliseconds=50))
    return WebhookDispatcher(
        store, WebhookSender(policy, timeout=2), CredentialsSealer(keys), retry
    )


async def test_the_receiver_verifies_the_cloudevent_and_a_second_copy_schedules_nothing(
    store: MongoWebhookStore, receiver: WebhookReceiver, credentials_keys: str
) -> None:
    old, new = new_secret(), new_secret()
    await register(
        store,
        receiver.url + "/vcs",
        SigningSecret(new),
        SigningSecret(old, until=datetime.now(UTC) + timedelta(hours=1)),
    )
    hooks = dispatcher(store, credentials_keys, timedelta(minutes=1))
    envelope = assignment(CredentialsSealer(credentials_keys))
    await hooks.schedule(envelope)
    await hooks.schedule(envelope)  # the same event redelivered
    assert await hooks.deliver_due() == 1
    [request] = await receiver.wait_for(1)
    assert request.path == "/vcs"
    assert request.headers["webhook-id"] == envelope.id
    assert request.headers["content-type"] == "application/cloudevents+json"
    for secret in (new, old):  # both signatures: a receiver on either secret verifies
        payload = receiver.verified(request, secret)
    assert not receiver.verifies(request, new_secret())
    assert payload["id"] == envelope.id
    assert payload["type"] == "th.go.dopa.vcs.room.assigned.v1"
    assert payload["subject"] == "r-1"
    assert payload["data"]["credentials"]["passcode"] == "951357"
    assert "sealed_credentials" not in payload["data"]
    assert await hooks.deliver_due() == 0
    message = await store.message(envelope.id)
    assert message is not None
    assert (message.state, message.attempts) == ("delivered", 1)


async def test_receiver_down_then_up_is_delivered_by_the_durable_schedule(
    store: MongoWebhookStore, receiver: WebhookReceiver, credentials_keys: str
) -> None:
    secret = new_secret()
    await register(store, receiver.url, SigningSecret(secret))
    receiver.stop()
    hooks = dispatcher(store, credentials_keys, timedelta(minutes=5))
    envelope = assignment(CredentialsSealer(credentials_keys))
    await hooks.schedule(envelope)
    assert await hooks.deliver_due() == 1
    failed_once = await store.message(envelope.id)
    assert failed_once is not None
    assert failed_once.state == "pending"
    assert failed_once.attempts == 1
    assert "not reached" in (failed_once.error or "")

    receiver.start()
    # another process (a fresh dispatcher: nothing kept in memory) finds it due in the store
    later = dispatcher(store, credentials_keys, timedelta(minutes=5))
    later.clock = lambda: datetime.now(UTC) + timedelta(seconds=5)
    assert await later.deliver_due() == 1
    [request] = await receiver.wait_for(1)
    assert receiver.verified(request, secret)["id"] == envelope.id
    message = await store.message(envelope.id)
    assert message is not None
    assert (message.state, message.attempts) == ("delivered", 2)


async def test_down_for_good_fails_with_credentials_failed_in_the_same_write(
    store: MongoWebhookStore,
    receiver: WebhookReceiver,
    credentials_keys: str,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    await register(store, receiver.url, SigningSecret(new_secret()))
    receiver.status = 503
    hooks = dispatcher(store, credentials_keys, timedelta(seconds=10))
    envelope = assignment(CredentialsSealer(credentials_keys))
    await hooks.schedule(envelope)
    moments = iter(datetime.now(UTC) + timedelta(seconds=s) for s in range(0, 100))
    hooks.clock = lambda: next(moments)
    tries = 0
    while (message := await store.message(envelope.id)) and message.state == "pending":
        tries += await hooks.deliver_due()
    assert message is not None
    assert message.state == "failed"
    assert tries == message.attempts == receiver.count() >= 2
    assert "webhook answered 503" in (message.error or "")
    document = await mongo[database_name(namespace, "notifier")]["webhook_messages"].find_one(
        {"_id": envelope.id}
    )
    assert document is not None
    [announced] = document["outbox"]
    assert announced["routing_key"] == "credentials.failed.47.4701"
    data = json.loads(announced["body"])["data"]
    assert data["channel"] == "webhook"
    assert data["error"].startswith("webhook: webhook answered 503")


async def test_a_name_that_resolves_inward_at_send_time_is_refused_for_good(
    store: MongoWebhookStore, credentials_keys: str
) -> None:
    answers = iter(["93.184.216.34", "127.0.0.1"])  # public when registered, loopback later

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(next(answers))]

    policy = NetworkPolicy(resolver=rebinding)
    await policy.check("https://hooks.example.com/in")  # what registration saw
    await register(store, "https://hooks.example.com/in", SigningSecret(new_secret()))
    hooks = dispatcher(store, credentials_keys, timedelta(hours=1), policy)
    envelope = assignment(CredentialsSealer(credentials_keys))
    await hooks.schedule(envelope)
    assert await hooks.deliver_due() == 1
    message = await store.message(envelope.id)
    assert message is not None
    assert message.state == "failed"
    assert message.attempts == 1
    assert "127.0.0.1, a loopback address" in (message.error or "")


async def test_a_line_push_reaches_the_fake_line_with_the_credentials() -> None:
    line = FakeLine(token="line-token").start()
    try:
        client = LineClient("line-token", base_url=line.url)

        class Groups:
            async def line_group(self, district_code: str) -> str | None:
                return {"4701": "C0123456789abcdef"}.get(district_code)

        channel = LineChannel(client, Groups())
        delivery = Delivery(
            request_id="r-9",
            contact=Contact(name="สมศรี", email="somsri@example.go.th", phone="042-711361"),
            title="ประชุมติดตามงาน",
            province_code="47",
            district_code="4701",
            created_at=STARTS,
            starts_at=STARTS,
            ends_at=STARTS + timedelta(hours=2),
            booking=Booking("123456789", 300, STARTS, STARTS + timedelta(hours=2), ""),
        )
        credentials = MeetingCredentials(passcode="951357", join_url="https://zoom.us/j/1?pwd=x")
        notice = Notice(MailKind.assigned, delivery, credentials)
        await channel.send(notice)
        await channel.send(notice)  # a retry after a lost answer: LINE's 409, shown once
        await channel.send(Notice(MailKind.assigned, replace(delivery, district_code="4702")))
        await line.wait_for(2)  # an office without a LINE group: nothing sent
        [push] = line.accepted
        assert push["to"] == "C0123456789abcdef"
        [text] = [m["text"] for m in push["messages"]]
        assert "123456789" in text
        assert "951357" in text
        assert "ประชุมติดตามงาน" in text
        assert "09:00" in text  # the meeting's time in Bangkok

        wrong = LineChannel(LineClient("wrong", base_url=line.url), Groups())
        with pytest.raises(PermanentFailure, match="401"):
            await wrong.send(Notice(MailKind.assigned, delivery, credentials, at=STARTS))
        await client.aclose()
    finally:
        line.stop()


async def test_whether_an_office_has_a_webhook_is_read_at_most_every_two_seconds(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    """The question every handled event asks: "none" answered from a copy of the offices with
    a webhook, so another process's registration counts once the copy is two seconds old (this
    process's own at once); "one" confirmed in the store, so a removal counts at once."""
    db = mongo[database_name(namespace, "notifier")]
    sealer = CredentialsSealer(credentials_keys)
    now = [1000.0]
    notifier = MongoWebhookStore(db, sealer, clock=lambda: now[0])
    other = MongoWebhookStore(db, sealer)  # another notifier process, where the API call went
    assert not await notifier.has_webhook("4701")

    await register(other, "http://127.0.0.1:9/hook")
    now[0] += WITH_WEBHOOK_MAX_AGE - 0.1
    assert not await notifier.has_webhook("4701")  # the copy read before it
    now[0] += 0.2
    assert await notifier.has_webhook("4701")
    assert not await notifier.has_webhook("4702")

    assert await other.unregister("4701")
    assert not await notifier.has_webhook("4701")  # the copy says one: the store says removed

    await register(notifier, "http://127.0.0.1:9/hook")
    assert await notifier.has_webhook("4701")  # its own registration: at once
    assert await notifier.unregister("4701")
    assert not await notifier.has_webhook("4701")
