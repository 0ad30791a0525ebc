"""Zoom credentials sealed for the services that need them, opaque to everyone else.

Public events travel on ``vcs.events``, which any integration may bind with
``#``. The passcode and the passcode-bearing join URL therefore travel only as
a Fernet token (AES-128-CBC + HMAC-SHA256, authenticated) that the allocator
seals and the notifier and intake open. Keys come from settings: the first key
seals, every listed key opens, so a key is rotated by putting the new one
first, waiting until no event sealed with the old one is in flight or stored,
then dropping it.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel, ConfigDict


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
        return self._fernet.encrypt(credentials.model_dump_json().encode()).decode()

    def open(self, sealed: str) -> MeetingCredentials:
        return MeetingCredentials.model_validate(json.loads(self.open_text(sealed)))

    def seal_text(self, text: str) -> str:
        """Any secret text sealed with the same keys (a webhook's signing secret, a message
        that carries a passcode), for a store that must not hold it in clear."""
        return self._fernet.encrypt(text.encode()).decode()

    def open_text(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise CredentialsSealError("sealed credentials cannot be opened") from exc


def new_key() -> str:
    """A fresh Fernet key, for ``make run``'s local secrets and for rotation."""
    return Fernet.generate_key().decode()
