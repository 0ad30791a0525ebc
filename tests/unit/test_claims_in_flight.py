"""The rooms one allocator process's allocations are claiming steer its other allocations."""

from datetime import UTC, datetime, timedelta

from vcs_allocator.claims_in_flight import ClaimsInFlight

NINE = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ROOMS = ("room-1", "room-2")


def slots(start: datetime, count: int) -> list[datetime]:
    return [start + i * timedelta(minutes=5) for i in range(count)]


def test_a_room_being_claimed_is_taken_for_overlapping_windows_of_other_requests_only() -> None:
    claims = ClaimsInFlight()
    with claims.allocation("a") as a, claims.allocation("b") as b:
        a.note("room-1", slots(NINE, 12))

        assert b.taken(slots(NINE + timedelta(minutes=55), 6), ROOMS) == {"room-1"}  # shares a slot
        assert b.taken(slots(NINE + timedelta(hours=1), 6), ROOMS) == frozenset()  # just after
        assert b.taken(slots(NINE - timedelta(minutes=30), 6), ROOMS) == frozenset()  # just before
        assert a.taken(slots(NINE, 12), ROOMS) == frozenset()  # its own claim does not steer it


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
        assert b.taken(slots(NINE, 12), ROOMS) == frozenset()


def test_two_copies_of_one_request_keep_their_own_notes() -> None:
    claims = ClaimsInFlight()
    with claims.allocation("a") as first, claims.allocation("a") as second:
        first.note("room-1", slots(NINE, 12))
        second.note("room-1", slots(NINE, 12))
    with claims.allocation("b") as b:
        assert b.taken(slots(NINE, 12), ROOMS) == frozenset()


def test_an_assigned_room_stays_taken_until_its_window_is_over_or_it_is_cancelled() -> None:
    now = [NINE]
    claims = ClaimsInFlight(clock=lambda: now[0])
    with claims.allocation("a") as a:
        a.note("room-1", slots(NINE, 12))
        a.note("room-2", slots(NINE, 12))  # chose again after a lost race: not assigned
        a.keep("room-1")
    with claims.allocation("c") as c:
        c.note("room-2", slots(NINE + timedelta(hours=2), 12))
        c.keep("room-2")

    with claims.allocation("b") as b:
        assert b.taken(slots(NINE, 12), ROOMS) == {"room-1"}
        assert b.taken(slots(NINE, 12), ["room-2"]) == frozenset()  # only among those asked
    now[0] = NINE + timedelta(hours=3)  # room-1's window is over: forgotten on the next keep
    with claims.allocation("d") as d:
        d.note("room-1", slots(NINE + timedelta(hours=4), 6))
        d.keep("room-1")
    assert claims.taken("e", slots(NINE, 12), ROOMS) == frozenset()
    claims.cancelled("c")
    assert claims.taken("e", slots(NINE + timedelta(hours=2), 12), ROOMS) == frozenset()
    assert claims.taken("e", slots(NINE + timedelta(hours=4), 6), ROOMS) == {"room-1"}
