"""The intake's revocation list: ids (``jti``) of tokens refused before they expire.

Kept in the intake's own store, collection ``revoked_tokens``, one document per
revoked token. A TTL index drops an entry once the token it names has expired
anyway, so the list stays as small as the set of live revoked tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from vcs_shared.store import Document


class MongoRevocationList:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.revoked = db["revoked_tokens"]

    async def ensure_indexes(self) -> None:
        await self.revoked.create_index("expires_at", expireAfterSeconds=0)

    async def is_revoked(self, jti: str) -> bool:
        return await self.revoked.find_one({"_id": jti}, projection={"_id": 1}) is not None

    async def revoke(
        self, jti: str, *, expires_at: datetime | None, subject: str | None, by: str
    ) -> bool:
        """Revokes the token; ``False`` when it already was. Without a known expiry
        (only the id was given) the entry is kept for good."""
        entry: Document = {"revoked_at": datetime.now(UTC), "revoked_by": by, "subject": subject}
        if expires_at is not None:
            entry["expires_at"] = expires_at
        result = await self.revoked.update_one({"_id": jti}, {"$setOnInsert": entry}, upsert=True)
        return result.upserted_id is not None
