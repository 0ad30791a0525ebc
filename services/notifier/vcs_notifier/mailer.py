"""Mail out through SMTP (aiosmtplib): the e-mail :class:`~vcs_notifier.channels.Channel`.

The relay's answer decides what a failure is: a refusal with a 5xx reply (the
recipient or the sender refused, a message rejected) is permanent; a 4xx, a
connection refused or lost, a timeout is temporary and tried again. A message
that cannot even be written (a header the standard library refuses) is permanent.

Only reaching the relay has a short timeout. Once the relay has greeted us, its
replies are awaited for a minute: giving up earlier cannot tell "not sent" from
"sent but the answer was slow", and the retry would mail the office twice (the
chaos soak found exactly that with a 10-second timeout and a relay that froze for a
few seconds). Not RFC 5321's 10 minutes (4.5.3.2): the send claim's lease must
outlast a send, and a lease that long would keep a crashed notifier's mail waiting.

Connections are kept between mails (each closed after :data:`IDLE_SECONDS` unused):
connecting, the greeting, ``EHLO`` and ``QUIT`` for every mail cost the notifier and the relay
more than the mail's own transaction. A kept connection the relay has closed meanwhile (its
idle timeout, a restart) is noticed at the latest when ``MAIL FROM`` finds it gone; the relay
cannot have taken the mail then, so it goes on a fresh connection. A failure after the relay
accepted ``MAIL FROM`` is what it always was.

At most ``sessions`` mails are under way at once (``VCS_SMTP_SESSIONS``, 16), whatever the
handlers' concurrency (``VCS_PREFETCH``, 64): relays limit the connections of one client
(Exchange's ``MaxInboundConnectionPerSource``, Postfix's
``smtpd_client_connection_count_limit``), and what the handlers mostly wait for is the store
and the journal, not the relay. A mail waiting its turn holds its send claim meanwhile: a few
mails' time while the relay answers; with a frozen relay, sends outlasted the claim's lease
before this limit too (each reply is awaited up to a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from email.message import Message
from typing import Literal, Protocol

import aiosmtplib
import structlog
from aiosmtplib.typing import Default

from vcs_notifier.channels import Notice, PermanentFailure, TemporaryFailure

log = structlog.get_logger(__name__)

EMAIL = "email"
REPLY_TIMEOUT = 60.0  # under the send claim's 90-s lease (vcs_notifier.handlers)
IDLE_SECONDS = 30.0
"""How long a connection is kept unused: well under what relays give an idle client
(RFC 5321 4.5.3.2.7 asks servers for 5 minutes; Postfix and aiosmtpd wait 300 s)."""
CLOSING = 421
"""The reply of a relay closing the connection (RFC 5321 3.8): to ``MAIL FROM`` on a kept
connection, it means the relay timed the idle connection out as the mail began."""


class Mailer(Protocol):
    async def send(self, message: Message) -> None: ...


class _Connection(aiosmtplib.SMTP):
    """A connection to the relay that can be kept between mails. It tells whether the relay
    accepted ``MAIL FROM`` in the mail under way: before that, nothing of the mail is on the
    relay, and a lost connection can be replaced without a second copy."""

    def __init__(self, **connect: object) -> None:
        super().__init__(**connect)  # type: ignore[arg-type]
        self.kept = False  # used for a mail before: the relay has not been heard from since
        self.mail_accepted = False

    async def mail(
        self,
        sender: str,
        /,
        *,
        options: Iterable[str] | None = None,
        encoding: str = "ascii",
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109 (aiosmtplib's)
    ) -> aiosmtplib.SMTPResponse:
        if self.kept:  # reaching a relay not heard from for a while: the short timeout
            timeout = Default.token
        response = await super().mail(sender, options=options, encoding=encoding, timeout=timeout)
        self.mail_accepted = True
        return response


class SmtpMailer:
    """Sends one message to the relay; raises :class:`PermanentFailure` or
    :class:`TemporaryFailure`. At most ``sessions`` mails at once (the others wait their
    turn); keeps up to ``keep`` connections unused for the next mails;
    :meth:`close_idle` closes those unused for ``idle`` seconds, :meth:`aclose` all."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
        timeout: float = 10.0,
        keep: int = 16,
        sessions: int = 16,
        idle: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect: dict[str, object] = {
            "hostname": host,
            "port": port,
            "username": username,
            "password": password,
            "start_tls": start_tls,
            "timeout": timeout,  # connecting, the greeting, TLS and login
        }
        self._keep = keep
        self._sessions = asyncio.Semaphore(sessions)
        self._idle_seconds = idle
        self._clock = clock
        self._idle: list[tuple[float, _Connection]] = []  # (unused since, connection), oldest first
        self._closed = False

    async def send(self, message: Message) -> None:
        try:
            await self._send(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            what = f"the relay refused the recipient: {refusals}"
            if any(r.code >= 500 for r in exc.recipients):
                raise PermanentFailure(what) from exc
            raise TemporaryFailure(what) from exc
        except aiosmtplib.SMTPResponseException as exc:
            what = f"the relay answered {exc.code} {exc.message}"
            if 500 <= exc.code < 600:
                raise PermanentFailure(what) from exc
            raise TemporaryFailure(what) from exc
        except aiosmtplib.SMTPNotSupported as exc:  # e.g. a Thai address, a relay without SMTPUTF8
            raise PermanentFailure(f"the relay cannot take this mail: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"the relay could not be reached: {exc!r}") from exc

    async def _send(self, message: Message) -> None:
        """On a kept connection if one is still open, else (or when the relay turns out to have
        closed it before the mail began) on a new one; once one of the ``sessions`` is free."""
        async with self._sessions:
            kept = self._kept()
            if kept is not None:
                try:
                    await self._transaction(kept, message)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPSenderRefused) as exc:
                    gone = isinstance(exc, aiosmtplib.SMTPServerDisconnected) or exc.code == CLOSING
                    if kept.mail_accepted or not gone:
                        raise
                    log.info("mail.reconnecting", reason=repr(exc))
                else:
                    return
            connection = _Connection(**self._connect)
            await connection.connect()
            await self._transaction(connection, message)

    def _kept(self) -> _Connection | None:
        """The connection used last that the relay has not closed, if any."""
        while self._idle:
            _, connection = self._idle.pop()
            if connection.is_connected:
                connection.kept = True
                return connection
        return None

    async def _transaction(self, connection: _Connection, message: Message) -> None:
        """One mail on ``connection``, which is kept for the next one if all went well and
        closed otherwise (after ``QUIT`` when the relay only refused, as before)."""
        connection.mail_accepted = False
        try:
            await connection.send_message(message, timeout=REPLY_TIMEOUT)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            await _quit(connection)
            raise
        except BaseException:
            connection.close()
            raise
        if self._closed or len(self._idle) >= self._keep:
            await _quit(connection)
        else:
            self._idle.append((self._clock(), connection))

    async def close_idle(self) -> None:
        """Closes the connections unused for ``idle`` seconds (run every few seconds)."""
        since = self._clock() - self._idle_seconds
        stale = [connection for at, connection in self._idle if at <= since]
        self._idle = [(at, connection) for at, connection in self._idle if at > since]
        await asyncio.gather(*(_quit(connection) for connection in stale))

    async def aclose(self) -> None:
        """Closes every kept connection; a mail still under way closes its own when done."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(connection) for _, connection in idle))


async def _quit(connection: aiosmtplib.SMTP) -> None:
    """``QUIT``, then closed, whatever the relay answers (or if it does not)."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        if connection.is_connected:
            await connection.quit()
    connection.close()


Compose = Callable[[Notice, str], Message]
"""Writes the mail of a notice from the sender address (:mod:`vcs_notifier.messages`)."""


class MailChannel:
    """The office's contact by e-mail: the notice written as a mail, sent through a relay."""

    name = EMAIL

    def __init__(self, mailer: Mailer, sender: str, compose: Compose) -> None:
        self._mailer = mailer
        self._sender = sender
        self._compose = compose

    async def send(self, notice: Notice) -> None:
        try:
            message = self._compose(notice, self._sender)
        except (ValueError, TypeError) as exc:  # the header API refuses what it cannot encode
            raise PermanentFailure(f"the mail could not be written: {exc}") from exc
        await self._mailer.send(message)
