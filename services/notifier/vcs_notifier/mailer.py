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
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from typing import Protocol

import aiosmtplib

from vcs_notifier.channels import Notice, PermanentFailure, TemporaryFailure

EMAIL = "email"
REPLY_TIMEOUT = 60.0  # under the send claim's 90-s lease (vcs_notifier.handlers)


class Mailer(Protocol):
    async def send(self, message: Message) -> None: ...


class SmtpMailer:
    """Sends one message to the relay; raises :class:`PermanentFailure` or
    :class:`TemporaryFailure`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._connect = {
            "hostname": host,
            "port": port,
            "username": username,
            "password": password,
            "start_tls": start_tls,
            "timeout": timeout,  # connecting, the greeting, TLS and login
        }

    async def send(self, message: Message) -> None:
        try:
            async with aiosmtplib.SMTP(**self._connect) as client:  # type: ignore[arg-type]
                await client.send_message(message, timeout=REPLY_TIMEOUT)
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
