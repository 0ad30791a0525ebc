"""Zoom credentials and contact details sealed for the services that need them, opaque to
everyone else.

Public events travel on ``vcs.events``, which any integration may bind with
``#``. The passcode and the passcode-bearing join URL therefore travel only as
a Fernet token (AES-128-CBC + HMAC-SHA256, authenticated) that the allocator
seals and the notifier and intake open; the office's contact (a person's name,
e-mail address and phone number) likewise, sealed by the intake and opened by
the notifier. Keys come from settings: the first key
seals, every listed key opens, so a key is rotated by putting the new one
first, waiting until no event sealed with the old one is in flight or stored,
then dropping it.
"""

from __future__ import annotations

import json
from typing import TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel, ConfigDict

from vcs_shared.events import Contact

Sealed = TypeVar("Sealed", bound=BaseModel)


class MeetingCredentials(BaseModel):
    """What lets someone into the meeting: never logged, never in clear on a topic."""

    model_config = ConfigDict(frozen=True)

    passcode: str
    join_url: str


class CredentialsSealError(ValueError):
    """A sealed value could not be opened with any configured key (tampered or rotated out)."""


class CredentialsSealer:
    """Seals and opens :class:`MeetingCredentials` with the configured Fernet keys."""

    def __init__(self, keys: str) -> None:
        parsed = [k.strip() for k in keys.split(",") if k.strip()]
        if not parsed:
            raise ValueError("at least one credentials key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in parsed])

    def seal(self, credentials: MeetingCredentials) -> str:
        return self._seal(credentials)

    def reseal(self, sealed: str) -> str:
        """The same credentials sealed again with the first (current) key: a room sealed
        when its pool was loaded is opened only when a booking is made, and the booking
        carries it under today's key, so an old key can be retired."""
        return self.seal(self.open(sealed))

    def open(self, sealed: str) -> MeetingCredentials:
        return self._open(sealed, MeetingCredentials)

    def seal_contact(self, contact: Contact) -> str:
        """The contact as it travels in ``request.submitted``: personal data, never in clear."""
        return self._seal(contact)

    def open_contact(self, sealed: str) -> Contact:
        return self._open(sealed, Contact)

    def seal_text(self, text: str) -> str:
        """Any secret text sealed with the same keys (a webhook's signing secret, a message
        that carries a passcode), for a store that must not hold it in clear."""
        return self._fernet.encrypt(text.encode()).decode()

    def open_text(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise CredentialsSealError("sealed value cannot be opened") from exc

    def _seal(self, value: BaseModel) -> str:
        return self.seal_text(value.model_dump_json())

    def _open(self, sealed: str, model: type[Sealed]) -> Sealed:
        return model.model_validate(json.loads(self.open_text(sealed)))


def new_key() -> str:
    """A fresh Fernet key, for ``make run``'s local secrets and for rotation."""
    return Fernet.generate_key().decode()
