"""The mailer keeps its SMTP connections between mails, against the real local relay (the
aiosmtpd sink): one connection for mails sent one after another; a kept connection the relay
closed meanwhile (dropped while idle, answered ``421`` or cut at ``MAIL FROM``, or the relay
restarted) is replaced and the mail arrives exactly once; a connection lost after the relay
took the mail is a temporary failure as before, not a second copy; idle connections are
closed with ``QUIT`` after their idle time, beyond the number kept, and at shutdown; no more
mails go at once than the mailer's sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from vcs_notifier.channels import TemporaryFailure
from vcs_notifier.mailer import IDLE_SECONDS, SmtpMailer
from vcs_tools.devstack import SmtpSink, free_port
from vcs_tools.mailsink import KeepMail

pytestmark = pytest.mark.integration

Peer = tuple[str, int] | str | None  # as aiosmtpd types it


class Relay(KeepMail):
    """The sink, which also tells which connection each mail came on, counts ``QUIT``, and
    drops connections the ways a real relay does."""

    def __init__(self) -> None:
        super().__init__(None)
        self.peers: list[Peer] = []  # the connection of each mail taken, in order
        self.quits = 0
        self.open: list[SMTP] = []  # every connection that began a mail
        self.at_next_mail: str | None = None  # "421": answer that and close; "cut": close
        self.cut_after_data = False  # take the next mail, then close before answering

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        what, self.at_next_mail = self.at_next_mail, None
        if what == "421":  # the client closes the connection on it
            return "421 4.4.2 idle too long, closing connection"
        if what == "cut":  # no answer: the connection is gone
            assert server.transport is not None
            server.transport.close()
            return "250 OK"
        self.open.append(server)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        self.peers.append(session.peer)
        if self.cut_after_data:
            self.cut_after_data = False
            assert server.transport is not None
            server.transport.close()
        return reply

    async def handle_QUIT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.quits += 1
        return "221 Bye"

    async def drop_all(self) -> None:
        """Closes every client connection, as a relay's idle timeout does."""
        for server in self.open:
            if server.transport is not None:
                server.transport.close()


class RelayServer:
    def __init__(self) -> None:
        self.relay = Relay()
        self.port = free_port()
        self.controller = Controller(self.relay, hostname="127.0.0.1", port=self.port)

    async def drop_all(self) -> None:
        """The relay closes every connection (in its own loop), then this returns."""
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self.relay.drop_all(), self.controller.loop)
        )


@pytest.fixture
def server() -> Iterator[RelayServer]:
    server = RelayServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def mail(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "vcs@example.go.th"
    message["To"] = "office@example.go.th"
    message["Subject"] = f"mail {n}"
    message.set_content(f"mail {n}")
    return message


def subjects(messages: list[EmailMessage]) -> list[str]:
    return [str(m["Subject"]) for m in messages]


async def test_mails_one_after_another_share_one_connection(server: RelayServer) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=server.port)
    for n in range(3):
        await mailer.send(mail(n))
    await mailer.aclose()

    assert subjects(server.relay.messages) == ["mail 0", "mail 1", "mail 2"]
    assert len(set(server.relay.peers)) == 1
    assert server.relay.quits == 1  # at shutdown


@pytest.mark.parametrize("how", ["dropped while idle", "421 at MAIL FROM", "cut at MAIL FROM"])
async def test_a_kept_connection_the_relay_closed_is_replaced_and_the_mail_goes_once(
    server: RelayServer, how: str
) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=server.port)
    await mailer.send(mail(1))
    if how == "dropped while idle":
        await server.drop_all()
    else:
        server.relay.at_next_mail = "421" if how.startswith("421") else "cut"

    await mailer.send(mail(2))
    await mailer.send(mail(3))
    await mailer.aclose()

    assert subjects(server.relay.messages) == ["mail 1", "mail 2", "mail 3"]
    first, second, third = server.relay.peers
    assert second != first
    assert third == second  # the new connection is kept in turn


async def test_a_connection_lost_after_the_relay_took_the_mail_is_no_second_copy(
    server: RelayServer,
) -> None:
    """Once the relay accepted ``MAIL FROM`` on a kept connection, a lost connection is a
    temporary failure as it always was (the handler retries it later): the mailer does not
    send the mail again on a new connection by itself."""
    mailer = SmtpMailer(host="127.0.0.1", port=server.port)
    await mailer.send(mail(1))
    server.relay.cut_after_data = True

    with pytest.raises(TemporaryFailure):
        await mailer.send(mail(2))
    await mailer.send(mail(3))
    await mailer.aclose()

    assert subjects(server.relay.messages) == ["mail 1", "mail 2", "mail 3"]


async def test_a_relay_restarted_between_two_mails_gets_the_second_once() -> None:
    port = free_port()
    before = SmtpSink(port=port).start()
    mailer = SmtpMailer(host="127.0.0.1", port=port)
    try:
        await mailer.send(mail(1))
    finally:
        before.stop()
    after = SmtpSink(port=port).start()
    try:
        await mailer.send(mail(2))
        await mailer.aclose()
    finally:
        after.stop()

    assert subjects(before.messages) == ["mail 1"]
    assert subjects(after.messages) == ["mail 2"]


async def test_a_connection_unused_for_the_idle_time_is_closed(server: RelayServer) -> None:
    now = [0.0]
    mailer = SmtpMailer(host="127.0.0.1", port=server.port, clock=lambda: now[0])
    await mailer.send(mail(1))

    now[0] += IDLE_SECONDS - 1
    await mailer.close_idle()
    assert server.relay.quits == 0
    await mailer.send(mail(2))

    now[0] += IDLE_SECONDS
    await mailer.close_idle()
    assert server.relay.quits == 1
    await mailer.send(mail(3))
    await mailer.aclose()

    first, second, third = server.relay.peers
    assert second == first
    assert third != second


async def test_connections_beyond_those_kept_are_closed_after_their_mail(
    server: RelayServer,
) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=server.port, keep=1)
    await asyncio.gather(mailer.send(mail(1)), mailer.send(mail(2)))
    assert server.relay.quits == 1
    await mailer.send(mail(3))
    await mailer.aclose()

    assert server.relay.quits == 2
    assert sorted(subjects(server.relay.messages)) == ["mail 1", "mail 2", "mail 3"]
    assert server.relay.peers[2] in server.relay.peers[:2]


async def test_no_more_mails_go_at_once_than_its_sessions(server: RelayServer) -> None:
    """Eight mails handed over at once go on two connections, one mail after another on each
    (the relay sees no more than the mailer's ``sessions`` from this client), none lost."""
    mailer = SmtpMailer(host="127.0.0.1", port=server.port, keep=2, sessions=2)
    await asyncio.gather(*(mailer.send(mail(n)) for n in range(8)))
    await mailer.aclose()

    assert sorted(subjects(server.relay.messages)) == [f"mail {n}" for n in range(8)]
    assert len(set(server.relay.peers)) == 2
