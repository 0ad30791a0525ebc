"""The sealed credentials a booking gets, for an allocation and for an operator's reassign alike.

Both give a booking a room and must seal what its office will join with the same way: the
room's own credentials resealed with the current key, or, with ``VCS_ZOOM_*`` set, a fresh
passcode for this booking (a rejection when Zoom cannot give one and the fallback says so).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from vcs_allocator.domain import Rejection, Room
from vcs_shared.credentials import CredentialsSealer

if TYPE_CHECKING:  # zoom_passcodes imports the reassign, which imports this module
    from vcs_allocator.zoom_passcodes import ZoomPasscodes


async def booking_credentials(
    sealer: CredentialsSealer,
    zoom: ZoomPasscodes | None,
    request_id: str,
    starts_at: datetime,
    room: Room,
) -> str | Rejection:
    """The room's own credentials (resealed), or a fresh Zoom passcode's, or a rejection when
    Zoom cannot give one and ``VCS_ZOOM_FALLBACK=reject``."""
    if zoom is None:
        return sealer.reseal(room.sealed_credentials)
    return await zoom.credentials_for(request_id, starts_at, room)
