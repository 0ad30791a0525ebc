"""Events built the way the services would build them, for tests that hand them over directly."""

from __future__ import annotations

from datetime import datetime, timedelta

from vcs_shared.events import Contact, RequestSubmitted, Urgency


def request_submitted(
    request_id: str,
    starts_at: datetime,
    *,
    participants: int = 10,
    title: str = "test",
    needs_support: bool = False,
    contact: Contact | None = None,
) -> RequestSubmitted:
    """A one-hour request of Mueang Sakon Nakhon (4701), submitted a day before it starts."""
    return RequestSubmitted(
        request_id=request_id,
        province_code="47",
        district_code="4701",
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        participants=participants,
        urgency=Urgency.normal,
        needs_support=needs_support,
        contact=contact or Contact(name="x", email="x@example.go.th", phone="042-000000"),
        submitted_at=starts_at - timedelta(days=1),
    )
