"""People, invites and sessions in the intake's own store (collections ``people``,
``invites``, ``sessions``).

Invite and session tokens are never stored: a document's ``_id`` is the SHA-256 of
its token, so a copy of the store opens no account. Expiry is an epoch-ms integer
(compared in filters, which the embedded store serves reliably only for numbers) plus
a datetime that a TTL index uses to drop old documents. Every change is one
single-document write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_intake.people.model import Person
from vcs_shared.auth import Role
from vcs_shared.store import Document, epoch_ms


class EmailTaken(Exception):
    """Another person already has this e-mail address."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Account:
    """A person as stored: who they are, their password hash and their lockout state."""

    person: Person
    password_hash: str | None
    failed_signins: int
    locked_until_ms: int

    def locked_at(self, now: datetime) -> datetime | None:
        """Until when the account is locked, if it is at ``now`` (whatever way one signs in)."""
        if self.locked_until_ms > now.timestamp() * 1000:
            return datetime.fromtimestamp(self.locked_until_ms / 1000, UTC)
        return None


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    person_id: str
    expires_at: datetime


def _person_document(person: Person, now: datetime) -> Document:
    return {
        "_id": person.person_id,
        "email": person.email,
        "name": person.name,
        "role": person.role.value,
        "district_code": person.district_code,
        "region": person.region,
        "provinces": sorted(person.provinces),
        "national": person.national,
        "phone": person.phone,
        "created_at": now,
        "password_hash": None,
        "failed_signins": 0,
        "locked_until_ms": 0,
    }


def _account(document: Document) -> Account:
    person = Person(
        person_id=document["_id"],
        email=document["email"],
        name=document["name"],
        role=Role(document["role"]),
        district_code=document.get("district_code"),
        region=document.get("region"),
        provinces=frozenset(document.get("provinces") or ()),
        national=bool(document.get("national")),
        phone=document.get("phone"),
    )
    return Account(
        person=person,
        password_hash=document.get("password_hash"),
        failed_signins=int(document.get("failed_signins") or 0),
        locked_until_ms=int(document.get("locked_until_ms") or 0),
    )


class MongoPeopleStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.people = db["people"]
        self.invites = db["invites"]
        self.sessions = db["sessions"]

    async def ensure_indexes(self) -> None:
        await self.people.create_index("email", unique=True)
        for collection in (self.invites, self.sessions):
            await collection.create_index("person_id")
            await collection.create_index("expires_at", expireAfterSeconds=0)

    # people

    async def add(self, person: Person, *, now: datetime) -> None:
        try:
            await self.people.insert_one(_person_document(person, now))
        except DuplicateKeyError as exc:
            raise EmailTaken(person.email) from exc

    async def by_email(self, email: str) -> Account | None:
        document = await self.people.find_one({"email": email})
        return _account(document) if document else None

    async def by_id(self, person_id: str) -> Account | None:
        document = await self.people.find_one({"_id": person_id})
        return _account(document) if document else None

    async def set_password(self, person_id: str, password_hash: str) -> None:
        await self.people.update_one(
            {"_id": person_id},
            {"$set": {"password_hash": password_hash, "failed_signins": 0, "locked_until_ms": 0}},
        )

    async def count_failure(self, person_id: str) -> int:
        """One more wrong password in a row; returns how many there are now."""
        document = await self.people.find_one_and_update(
            {"_id": person_id},
            {"$inc": {"failed_signins": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return int(document["failed_signins"]) if document else 0

    async def lock(self, person_id: str, *, until: datetime) -> None:
        """Locks the account; the count starts again once the lock is over."""
        await self.people.update_one(
            {"_id": person_id},
            {"$set": {"locked_until_ms": epoch_ms(until), "failed_signins": 0}},
        )

    async def clear_failures(self, person_id: str) -> None:
        await self.people.update_one({"_id": person_id}, {"$set": {"failed_signins": 0}})

    # invites

    async def add_invite(self, token: str, person_id: str, *, expires_at: datetime) -> None:
        await self.invites.insert_one(
            {
                "_id": token_digest(token),
                "person_id": person_id,
                "expires_ms": epoch_ms(expires_at),
                "expires_at": expires_at,
                "used": False,
            }
        )

    async def open_invite(self, token: str, *, now: datetime) -> str | None:
        """The person an unused, unexpired invite is for, or None."""
        document = await self.invites.find_one({"_id": token_digest(token)})
        if document is None or document["used"] or document["expires_ms"] <= epoch_ms(now):
            return None
        return str(document["person_id"])

    async def use_invite(self, token: str, *, now: datetime) -> str | None:
        """Marks the invite used (compare-and-set: only one caller wins); its person, or None."""
        document = await self.invites.find_one_and_update(
            {"_id": token_digest(token), "used": False, "expires_ms": {"$gt": epoch_ms(now)}},
            {"$set": {"used": True, "used_ms": epoch_ms(now)}},
        )
        return str(document["person_id"]) if document else None

    # sessions

    async def add_session(self, token: str, person_id: str, *, expires_at: datetime) -> None:
        await self.sessions.insert_one(
            {
                "_id": token_digest(token),
                "person_id": person_id,
                "expires_ms": epoch_ms(expires_at),
                "expires_at": expires_at,
                "created_at": datetime.now(UTC),
            }
        )

    async def session(self, token: str, *, now: datetime) -> Session | None:
        document = await self.sessions.find_one({"_id": token_digest(token)})
        if document is None or document["expires_ms"] <= epoch_ms(now):
            return None
        return Session(
            session_id=document["_id"],
            person_id=document["person_id"],
            expires_at=datetime.fromtimestamp(document["expires_ms"] / 1000, UTC),
        )

    async def end_session(self, token: str) -> None:
        await self.sessions.delete_one({"_id": token_digest(token)})
