"""The rooms one allocator process's allocations are claiming steer its other allocations."""

from datetime import UTC, datetime, timedelta

from vcs_allocator.claims_in_flight import ClaimsInFlight

NINE = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def slots(start: datetime, count: int) -> list[datetime]:
    return [start + i * timedelta(minutes=5) for i in range(count)]


def test_a_room_being_claimed_is_taken_for_overlapping_windows_of_other_requests_only() -> None:
    claims = ClaimsInFlight()
    with claims.allocation("a") as a, claims.allocation("b") as b:
        a.note("room-1", slots(NINE, 12))

        assert b.taken(slots(NINE + timedelta(minutes=55), 6)) == {"room-1"}  # shares a slot
        assert b.taken(slots(NINE + timedelta(hours=1), 6)) == frozenset()  # just after
        assert b.taken(slots(NINE - timedelta(minutes=30), 6)) == frozenset()  # just before
        assert a.taken(slots(NINE, 12)) == frozenset()  # its own claim does not steer it


def test_notes_are_forgotten_when_the_allocation_ends_however_it_ends() -> None:
    claims = ClaimsInFlight()
    try:
        with claims.allocation("a") as a:
            a.note("room-1", slots(NINE, 12))
            a.note("room-2", slots(NINE, 12))
            raise RuntimeError("the store went away")
    except RuntimeError:
        pass
    with claims.allocation("b") as b:
        assert b.taken(slots(NINE, 12)) == frozenset()


def test_two_copies_of_one_request_keep_their_own_notes() -> None:
    claims = ClaimsInFlight()
    with claims.allocation("a") as first, claims.allocation("a") as second:
        first.note("room-1", slots(NINE, 12))
        second.note("room-1", slots(NINE, 12))
    with claims.allocation("b") as b:
        assert b.taken(slots(NINE, 12)) == frozenset()
