"""What the benchmark asks for: a national pool, and the offices' requests for one morning.

Every request is for 250 participants, so best fit always takes a 300 room;
each province has one 300 room per district office (plus a few larger ones),
so a whole burst fits. A second wave (``waves=2``) asks again for the same
day's afternoon, which the same rooms can serve.

Offices do not queue up province by province: a burst arrives in a shuffled
(seeded, so repeatable) order, and the steady load is a seeded mix of offices,
days and hours, as everyday requests would be.
"""

from __future__ import annotations

import random
import string
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from vcs_allocator.domain import PoolEntry
from vcs_shared.auth import TokenCodec
from vcs_shared.credentials import CredentialsSealer, new_key
from vcs_shared.events import Contact, RequestSubmitted, Urgency
from vcs_shared.offices import Office, all_offices
from vcs_shared.thaitime import BANGKOK

PARTICIPANTS = 250
CONTACT = {"name": "สมชาย ใจดี", "email": "somchai@example.go.th", "phone": "042-711360"}
WAVE_HOURS = (9, 13, 16)
SEALED_CONTACT = CredentialsSealer(new_key()).seal_contact(Contact.model_validate(CONTACT))
"""The floor's events carry a sealed contact like the intake's; the allocator never opens it."""


@dataclass(frozen=True, slots=True)
class Ask:
    """One request as an office sends it: the office and its window (Asia/Bangkok)."""

    office: Office
    starts_at: datetime
    ends_at: datetime
    token: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "district_code": self.office.district_code,
            "title": "ประชุมบัญชาการระดับประเทศ",
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "participants": PARTICIPANTS,
            "urgency": Urgency.most_urgent.value,
            "needs_support": False,
            "contact": CONTACT,
        }

    def idempotency_key(self) -> str:
        """Sent with every submit, as the README tells every API client to."""
        return f"bench-{self.office.district_code}-{self.starts_at.isoformat()}"

    def event(self) -> RequestSubmitted:
        """The ``request.submitted`` the intake would publish for it (for the floor)."""
        return RequestSubmitted(
            request_id=str(uuid.uuid4()),
            province_code=self.office.province_code,
            district_code=self.office.district_code,
            title="ประชุมบัญชาการระดับประเทศ",
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            participants=PARTICIPANTS,
            urgency=Urgency.most_urgent,
            needs_support=False,
            sealed_contact=SEALED_CONTACT,
            submitted_at=datetime.now(UTC),
        )


def national_pool(offices: list[Office], seed: int = 2563) -> list[PoolEntry]:
    """Per province: one 300 room per district office, one 500 per four offices, one 1,000."""
    rng = random.Random(seed)
    per_province = Counter(office.province_code for office in offices)
    rooms: list[PoolEntry] = []
    for province, count in sorted(per_province.items()):
        capacities = [300] * count + [500] * (count // 4 + 1) + [1000]
        for index, capacity in enumerate(capacities):
            meeting_id = f"9{province}{index:07d}"
            passcode = "".join(rng.choices(string.ascii_letters + string.digits, k=8))
            join_url = f"https://dopa-vcs.zoom.us/j/{meeting_id}?pwd={passcode}"
            rooms.append(PoolEntry(meeting_id, capacity, province, passcode, join_url))
    return rooms


def with_tokens(asks: list[Ask], secret: str) -> list[Ask]:
    """The same asks, each carrying a bearer token of its own office (one token per office)."""
    codec = TokenCodec(secret)
    tokens: dict[str, str] = {}
    for ask in asks:
        code = ask.office.district_code
        if code not in tokens:
            tokens[code] = codec.issue_office(code, ttl=timedelta(hours=6)).token
    return [replace(ask, token=tokens[ask.office.district_code]) for ask in asks]


def day(days_ahead: int) -> datetime:
    """Midnight in Bangkok, ``days_ahead`` days from today."""
    base = datetime.now(BANGKOK) + timedelta(days=days_ahead)
    return base.replace(hour=0, minute=0, second=0, microsecond=0)


def burst(
    offices: list[Office], *, waves: int = 1, days_ahead: int = 1, seed: int = 2563
) -> list[Ask]:
    """Every office asks for a two-hour room on the same morning (and afternoon, per wave)."""
    if not 1 <= waves <= len(WAVE_HOURS):
        raise ValueError(f"waves must be 1..{len(WAVE_HOURS)}")
    midnight = day(days_ahead)
    asks: list[Ask] = []
    for hour in WAVE_HOURS[:waves]:
        start = midnight + timedelta(hours=hour)
        asks.extend(Ask(office, start, start + timedelta(hours=2)) for office in offices)
    return asks


def steady(offices: list[Office], count: int, *, first_day: int = 10) -> list[Ask]:
    """``count`` requests cycling through the offices; each round of offices takes a new day."""
    asks = []
    for i in range(count):
        round_, index = divmod(i, len(offices))
        start = day(first_day + round_) + timedelta(hours=9)
        asks.append(Ask(offices[index], start, start + timedelta(hours=2)))
    return asks


def offices(limit: int | None = None) -> list[Office]:
    """All 928 district offices (or the first ``limit``), in geothai's order."""
    everyone = all_offices()
    return everyone[:limit] if limit else everyone
