"""Mail out through SMTP (aiosmtplib); the only real implementation of :class:`Mailer`."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

import aiosmtplib


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class PermanentMailError(Exception):
    """The relay refused the message for good (e.g. recipient rejected): retrying will not help."""


class SmtpMailer:
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
        self._options = {
            "hostname": host,
            "port": port,
            "username": username,
            "password": password,
            "start_tls": start_tls,
            "timeout": timeout,
        }

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(message, **self._options)  # type: ignore[arg-type]
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as exc:
            raise PermanentMailError(str(exc)) from exc
