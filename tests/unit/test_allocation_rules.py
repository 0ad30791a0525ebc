"""The allocation rules (README, Allocation), on the pure domain functions, and the pool file
format."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.paths import SAMPLE_POOL
from vcs_allocator.domain import (
    AllocationPolicy,
    PoolEntry,
    Rejection,
    Room,
    Span,
    check_office,
    check_window,
    choose_room,
    claim_keys,
    kept_keys,
    occupied_span,
    pools_for,
    probe_slots,
    released_from,
    slot_starts,
)
from vcs_allocator.pool import PoolFileError, load_pool_file, parse_pool
from vcs_shared.credentials import CredentialsSealer, new_key
from vcs_shared.events import RejectionReason
from vcs_shared.offices import REGION_PROVINCES
from vcs_shared.thaitime import BANGKOK

pytestmark = pytest.mark.unit

POLICY = AllocationPolicy()  # 15-minute buffer on a 5-minute grid, 12 hours at most
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=BANGKOK)
SAKON_NAKHON = ["47", "region-12"]


def room(meeting_id: str, capacity: int, pool: str = "47", *, active: bool = True) -> Room:
    return Room(
        meeting_id, capacity, pool, f"https://zoom.example/j/{meeting_id}", "sealed", active
    )


def at(hour: int, minute: int = 0, *, day: int = 26) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BANGKOK)


def slots_of(start: datetime, end: datetime) -> set[datetime]:
    """The unique-index keys the store would insert for this window."""
    return set(claim_keys(occupied_span(start, end, POLICY), POLICY.slot))


def collide(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    """Whether the store would refuse the second window of one room after the first."""
    overlap = occupied_span(*a, POLICY).overlaps(occupied_span(*b, POLICY))
    assert overlap == bool(slots_of(*a) & slots_of(*b))  # the span rule is the index's rule
    return overlap


def reason(result: Room | Rejection) -> RejectionReason:
    assert isinstance(result, Rejection), result
    assert result.message_en
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in result.message_th)  # Thai script
    return result.reason


# --- choice -----------------------------------------------------------------


def test_best_fit_takes_the_smallest_room_that_holds_everyone() -> None:
    rooms = [room("100000001", 1000), room("100000002", 500), room("100000003", 300)]

    assert choose_room(rooms, set(), 250, SAKON_NAKHON) == rooms[2]
    assert choose_room(rooms, set(), 300, SAKON_NAKHON) == rooms[2]
    assert choose_room(rooms, set(), 301, SAKON_NAKHON) == rooms[1]
    assert choose_room(rooms, set(), 999, SAKON_NAKHON) == rooms[0]


def test_a_busy_or_inactive_room_is_skipped_for_the_next_best_fit() -> None:
    rooms = [
        room("100000001", 300),
        room("100000002", 300, active=False),
        room("100000003", 500),
    ]

    assert choose_room(rooms, {"100000001"}, 250, SAKON_NAKHON) == rooms[2]


def test_ties_are_broken_by_meeting_id_whatever_the_order_rooms_come_in() -> None:
    rooms = [room(f"20000000{i}", 300) for i in range(1, 7)]
    choices = set()
    for seed in range(20):
        shuffled = rooms.copy()
        random.Random(seed).shuffle(shuffled)
        choices.add(choose_room(shuffled, {"200000001"}, 100, SAKON_NAKHON))

    assert choices == {rooms[1]}


def test_a_request_gets_the_same_room_in_every_process_and_requests_spread_over_equal_rooms() -> (
    None
):
    rooms = [room(f"20000000{i}", 300) for i in range(1, 7)]
    bigger = room("300000001", 500)

    def choice(request_id: str, seed: int) -> Room | Rejection:
        shuffled = [*rooms, bigger]
        random.Random(seed).shuffle(shuffled)
        return choose_room(shuffled, set(), 100, SAKON_NAKHON, request_id=request_id)

    per_request = {rid: {choice(rid, seed) for seed in range(10)} for rid in map(str, range(30))}

    assert all(len(chosen) == 1 for chosen in per_request.values())
    spread = {next(iter(chosen)) for chosen in per_request.values()}
    assert bigger not in spread
    assert len(spread) >= 4


def test_a_room_the_request_already_holds_is_adopted_before_a_better_fit() -> None:
    rooms = [room("100000001", 300), room("100000002", 500)]

    assert choose_room(rooms, set(), 250, SAKON_NAKHON, held={"100000002"}) == rooms[1]
    assert choose_room(rooms, {"100000002"}, 250, SAKON_NAKHON, held={"100000002"}) == rooms[0]


def test_overflow_is_used_only_when_the_province_pool_has_nothing_that_fits_free() -> None:
    province = [room("100000001", 500), room("100000002", 1000)]
    overflow = [room("900000001", 300, "region-12"), room("900000002", 500, "region-12")]
    rooms = province + overflow

    assert choose_room(rooms, set(), 250, SAKON_NAKHON) == province[0]  # not the smaller overflow
    assert choose_room(rooms, {"100000001"}, 250, SAKON_NAKHON) == province[1]
    both_busy = {"100000001", "100000002"}
    assert choose_room(rooms, both_busy, 250, SAKON_NAKHON) == overflow[0]
    assert choose_room(rooms, both_busy, 250, ["47"]) == Rejection(
        RejectionReason.no_room_free,
        "ไม่มีห้องประชุมว่างในช่วงเวลาที่ขอ",
        "no room is free for the requested time",
    )


def test_the_pools_of_a_province_are_its_own_then_its_regions_overflow() -> None:
    assert pools_for("47", use_overflow=True) == ["47", "region-12"]
    assert pools_for("38", use_overflow=True) == ["38", "region-12"]
    assert pools_for("47", use_overflow=False) == ["47"]
    assert pools_for("10", use_overflow=True) == ["10"]  # Bangkok: no region configured


# --- buffer and windows ------------------------------------------------------


def test_back_to_back_windows_exactly_one_buffer_apart_may_share_a_room() -> None:
    first = (at(9), at(10))

    assert not collide(first, (at(10, 15), at(11)))  # starts one buffer after
    assert not collide(first, (at(7), at(8, 45)))  # ends one buffer before


def test_one_minute_less_than_the_buffer_is_refused_on_either_side() -> None:
    first = (at(9), at(10))

    assert collide(first, (at(10, 14), at(11)))
    assert collide(first, (at(7), at(8, 46)))
    assert collide(first, (at(10, 10), at(11)))  # one grid step less
    assert collide(first, (at(9, 30), at(9, 45)))  # inside


def test_a_reservation_holds_its_window_and_the_buffer_after_it_on_the_grid() -> None:
    span = occupied_span(at(9, 3), at(10, 58), POLICY)

    assert span.start == at(9).astimezone(UTC)
    assert span.end == at(11, 15).astimezone(UTC)  # 10:58 + 15 min, rounded up to the grid
    assert len(slot_starts(span, POLICY.slot)) == 27
    assert len(claim_keys(span, POLICY.slot)) == 11  # first and last 3, every 4th between


def test_a_window_spanning_midnight_is_valid_and_blocks_both_days() -> None:
    night = (at(23, 0), at(1, 0, day=27))

    assert check_window(*night, NOW, POLICY) is None
    assert len(slot_starts(occupied_span(*night, POLICY), POLICY.slot)) == (2 * 60 + 15) // 5
    assert collide(night, (at(0, 30, day=27), at(2, 0, day=27)))
    assert not collide(night, (at(1, 15, day=27), at(3, 0, day=27)))
    assert collide(night, (at(22, 0), at(22, 50)))
    assert not collide(night, (at(22, 0), at(22, 45)))


def test_any_offset_means_the_same_instant() -> None:
    bangkok = (at(9), at(10))
    utc = (at(9).astimezone(UTC), at(10).astimezone(UTC))

    assert slots_of(*bangkok) == slots_of(*utc)


# --- rejections --------------------------------------------------------------


def test_more_participants_than_the_largest_room_is_capacity_exceeded() -> None:
    rooms = [room("100000001", 500), room("900000001", 1000, "region-12")]

    assert reason(choose_room(rooms, set(), 1001, SAKON_NAKHON)) is (
        RejectionReason.capacity_exceeded
    )
    assert reason(choose_room(rooms, set(), 800, ["47"])) is RejectionReason.capacity_exceeded
    assert choose_room(rooms, set(), 800, SAKON_NAKHON) == rooms[1]


def test_no_free_fitting_room_is_no_room_free() -> None:
    rooms = [room("100000001", 300), room("100000002", 1000)]

    assert reason(choose_room(rooms, {"100000002"}, 400, ["47"])) is RejectionReason.no_room_free


def test_a_province_without_active_rooms_is_pool_empty() -> None:
    rooms = [room("100000001", 300, active=False), room("100000002", 300, "48")]

    assert reason(choose_room(rooms, set(), 10, ["47"])) is RejectionReason.pool_empty
    assert reason(choose_room([], set(), 10, ["10"])) is RejectionReason.pool_empty


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "english"),
    [
        (at(10), at(9), "end after it starts"),
        (at(10), at(10), "end after it starts"),
        (NOW - timedelta(hours=1), NOW + timedelta(hours=1), "in the past"),
        (at(6), at(18, 5), "longer than 12 hours"),
        (
            datetime(9999, 12, 31, 9, tzinfo=BANGKOK),
            datetime(9999, 12, 31, 11, tzinfo=BANGKOK),
            "further ahead",
        ),
    ],
    ids=["ends-before-start", "empty", "in-the-past", "too-long", "year-9999"],
)
def test_bad_windows_are_window_invalid(
    starts_at: datetime, ends_at: datetime, english: str
) -> None:
    rejection = check_window(starts_at, ends_at, NOW, POLICY)

    assert rejection is not None
    assert reason(rejection) is RejectionReason.window_invalid
    assert english in rejection.message_en


def test_a_cancellation_gives_back_the_slots_from_the_next_grid_slot_on() -> None:
    before_the_meeting = NOW - timedelta(days=1)
    under_way = NOW + timedelta(minutes=7, seconds=30)

    assert released_from(before_the_meeting, POLICY) == before_the_meeting.astimezone(UTC)
    assert released_from(under_way, POLICY) == (NOW + timedelta(minutes=10)).astimezone(UTC)
    assert released_from(NOW, POLICY) == NOW.astimezone(UTC)


def test_windows_at_the_limits_are_accepted() -> None:
    assert check_window(at(6), at(18), NOW, POLICY) is None  # exactly 12 hours
    assert check_window(NOW - timedelta(minutes=4), NOW + timedelta(hours=1), NOW, POLICY) is None


@pytest.mark.parametrize(("district", "province"), [("4799", "47"), ("4801", "47"), ("x", "47")])
def test_an_unknown_office_or_one_of_another_province_is_unknown_office(
    district: str, province: str
) -> None:
    rejection = check_office(district, province)

    assert rejection is not None
    assert reason(rejection) is RejectionReason.unknown_office


def test_every_sakon_nakhon_office_is_known() -> None:
    assert all(check_office(f"47{n:02d}", "47") is None for n in range(1, 19))


# --- property: the slot index never lets one room be booked twice -----------


@dataclass
class Booking:
    meeting_id: str
    starts_at: datetime
    ends_at: datetime


class SlotIndexModel:
    """The store in miniature: a unique (meeting_id, slot) set, claimed as the allocator does."""

    def __init__(self, rooms: list[Room]) -> None:
        self.rooms = rooms
        self.slots: dict[tuple[str, datetime], str] = {}
        self.live: dict[str, Booking] = {}

    def request(self, request_id: str, start: datetime, end: datetime, stale: bool) -> None:
        if check_window(start, end, NOW, POLICY) is not None:
            return
        wanted = claim_keys(occupied_span(start, end, POLICY), POLICY.slot)
        busy = set() if stale else {m for (m, s) in self.slots if s in set(wanted)}
        while True:
            choice = choose_room(self.rooms, busy, 100, SAKON_NAKHON)
            if isinstance(choice, Rejection):
                return
            if self._claim(choice.meeting_id, request_id, wanted):
                self.live[request_id] = Booking(choice.meeting_id, start, end)
                return
            busy.add(choice.meeting_id)

    def _claim(self, meeting_id: str, request_id: str, wanted: list[datetime]) -> bool:
        inserted: list[tuple[str, datetime]] = []
        for slot in wanted:  # ordered insert: stop at the first duplicate key
            if (meeting_id, slot) in self.slots:
                for key in inserted:
                    del self.slots[key]
                return False
            self.slots[(meeting_id, slot)] = request_id
            inserted.append((meeting_id, slot))
        return True

    def cancel(self, request_id: str) -> None:
        self.live.pop(request_id, None)
        for key in [k for k, holder in self.slots.items() if holder == request_id]:
            del self.slots[key]


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("request"),
            st.integers(min_value=0, max_value=8 * 60),  # start, minutes after 08:00
            st.integers(min_value=1, max_value=4 * 60),  # duration in minutes
            st.booleans(),  # the allocator's view of busy rooms is stale
        ),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=60)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_no_two_live_reservations_of_a_meeting_id_overlap_with_the_buffer(
    ops: list[tuple[object, ...]],
) -> None:
    model = SlotIndexModel(
        [room("100000001", 300), room("100000002", 500), room("900000001", 300, "region-12")]
    )
    for number, op in enumerate(ops):
        if op[0] == "request":
            _, offset, minutes, stale = op
            assert isinstance(offset, int)
            assert isinstance(minutes, int)
            start = at(8) + timedelta(minutes=offset)
            model.request(f"r{number}", start, start + timedelta(minutes=minutes), bool(stale))
        else:
            model.cancel(f"r{op[1]}")

    bookings = list(model.live.values())
    for i, a in enumerate(bookings):
        for b in bookings[i + 1 :]:
            if a.meeting_id == b.meeting_id:
                apart = a.starts_at >= b.ends_at + POLICY.buffer or (
                    b.starts_at >= a.ends_at + POLICY.buffer
                )
                assert apart, (a, b)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=600),
    st.integers(min_value=1, max_value=600),
    st.integers(min_value=0, max_value=900),
    st.integers(min_value=1, max_value=600),
)
def test_the_probe_slots_see_every_reservation_that_overlaps_a_span(
    start: int, minutes: int, other_start: int, other_minutes: int
) -> None:
    """The allocator reads only the probe slots to find busy rooms: they must not miss one."""
    mine = (at(6) + timedelta(minutes=start), at(6) + timedelta(minutes=start + minutes))
    other = (
        at(6) + timedelta(minutes=other_start),
        at(6) + timedelta(minutes=other_start + other_minutes),
    )
    probes = set(probe_slots(occupied_span(*mine, POLICY), POLICY.slot))

    assert bool(probes & slots_of(*other)) == collide(mine, other)


windows = st.tuples(
    st.integers(min_value=0, max_value=900), st.integers(min_value=1, max_value=600)
)


def keys_of(window: tuple[int, int], buffer: int, slot: int = 5) -> set[datetime]:
    """The keys a claim of ``window`` (start and length in minutes after 06:00) inserts under a
    buffer of ``buffer`` minutes on a grid of ``slot`` minutes."""
    policy = AllocationPolicy(buffer=timedelta(minutes=buffer), slot=timedelta(minutes=slot))
    start = at(6) + timedelta(minutes=window[0])
    return set(
        claim_keys(occupied_span(start, start + timedelta(minutes=window[1]), policy), policy.slot)
    )


def spans_overlap(
    a: tuple[int, int], b: tuple[int, int], buffers: tuple[int, int], slot: int = 5
) -> bool:
    spans = [
        occupied_span(
            at(6) + timedelta(minutes=w[0]),
            at(6) + timedelta(minutes=w[0] + w[1]),
            AllocationPolicy(buffer=timedelta(minutes=buffer), slot=timedelta(minutes=slot)),
        )
        for w, buffer in zip((a, b), buffers, strict=True)
    ]
    return spans[0].overlaps(spans[1])


@settings(max_examples=400, deadline=None)
@given(
    windows,
    windows,
    st.sampled_from([0, 5, 10, 15, 30]),
    st.sampled_from([0, 5, 15, 60]),
    st.sampled_from([1, 5, 15]),
)
def test_two_claims_share_a_key_exactly_when_their_spans_overlap_whatever_the_buffer_was(
    a: tuple[int, int], b: tuple[int, int], buffer_a: int, buffer_b: int, slot: int
) -> None:
    """The unique index refuses a claim only on a shared key: the sparse keys must meet for
    every overlap, also between claims written before and after the buffer setting changed,
    and never for spans that merely touch."""
    shared = keys_of(a, buffer_a, slot) & keys_of(b, buffer_b, slot)

    assert bool(shared) == spans_overlap(a, b, (buffer_a, buffer_b), slot)


@settings(max_examples=300, deadline=None)
@given(windows, windows)
def test_a_claim_of_every_slot_written_before_sparse_keys_meets_the_new_keys(
    old: tuple[int, int], new: tuple[int, int]
) -> None:
    """Slots stored by earlier versions (one document per slot) still block new claims."""
    start = at(6) + timedelta(minutes=old[0])
    every_slot = set(
        slot_starts(occupied_span(start, start + timedelta(minutes=old[1]), POLICY), POLICY.slot)
    )

    assert bool(every_slot & keys_of(new, 15)) == spans_overlap(old, new, (15, 15))


@settings(max_examples=300, deadline=None)
@given(windows, st.integers(min_value=0, max_value=700), windows)
def test_the_part_a_cancelled_meeting_keeps_blocks_exactly_what_it_overlaps(
    held: tuple[int, int], cancelled_after: int, other: tuple[int, int]
) -> None:
    """A cancellation under way keeps the slots before ``starting`` (at least four) and adds
    the keys at the end of that part: a later claim is refused exactly where they overlap."""
    start = at(6) + timedelta(minutes=held[0])
    span = occupied_span(start, start + timedelta(minutes=held[1]), POLICY)
    starting = released_from(start + timedelta(minutes=cancelled_after), POLICY)
    keys: set[datetime] = set()
    kept = None  # nothing: a meeting not begun gives back its whole span
    if starting > span.start:
        end, tail = kept_keys(span.start, starting, POLICY.slot)
        claimed = set(claim_keys(span, POLICY.slot))
        keys = {key for key in claimed | {t for t in tail if t < span.end} if key < end}
        kept = Span(span.start, min(end, span.end))

    other_span = occupied_span(
        at(6) + timedelta(minutes=other[0]), at(6) + timedelta(minutes=other[0] + other[1]), POLICY
    )
    assert bool(keys & keys_of(other, 15)) == (kept is not None and kept.overlaps(other_span))


# --- pool files ----------------------------------------------------------------

HEADER = "meeting_id,capacity,pool,passcode,join_url,active\n"


def test_the_sample_pool_covers_region_12_with_a_mix_of_capacities() -> None:
    rooms = load_pool_file(SAMPLE_POOL)

    pools = {r.pool for r in rooms}
    assert pools == REGION_PROVINCES["12"] | {"region-12"}
    for pool in pools:
        capacities = {r.capacity for r in rooms if r.pool == pool and r.active}
        assert capacities == {300, 500, 1000}, pool
    assert all(9 <= len(r.meeting_id) <= 11 for r in rooms)


def test_a_csv_pool_is_read_with_defaults() -> None:
    text = HEADER + (
        "123456789,300,47,abc,https://zoom.example/j/123456789?pwd=abc,\n"
        "12345678901,1000,region-12,def,https://zoom.example/j/12345678901,false\n"
        "\n"
        "987 654 321,500,48,ghi,https://zoom.example/j/987654321,true\n"
    )

    rooms = parse_pool(text, fmt="csv")

    assert [(r.meeting_id, r.capacity, r.pool, r.active) for r in rooms] == [
        ("123456789", 300, "47", True),
        ("12345678901", 1000, "region-12", False),
        ("987654321", 500, "48", True),
    ]
    assert rooms[0].public_join_url == "https://zoom.example/j/123456789"


def test_a_pool_names_each_rooms_zoom_host_or_shares_one_per_pool() -> None:
    text = (
        HEADER.rstrip("\n")
        + ",host\n"
        + (
            "123456789,300,47,abc,https://zoom.example/j/123456789,,somsri@example.go.th\n"
            "987654321,500,47,ghi,https://zoom.example/j/987654321,,\n"
        )
    )

    rooms = [entry.sealed(CredentialsSealer(new_key())) for entry in parse_pool(text, fmt="csv")]

    assert [(r.host, r.zoom_host) for r in rooms] == [
        ("somsri@example.go.th", "somsri@example.go.th"),
        (None, "pool-47"),
    ]


def test_every_bad_csv_line_is_reported_with_its_line_number_and_field() -> None:
    text = HEADER + (
        "123456789,300,47,abc,https://zoom.example/j/1,true\n"
        "12345,300,47,abc,https://zoom.example/j/2,true\n"
        "223456789,400,47,abc,https://zoom.example/j/3,true\n"
        "323456789,300,99,abc,https://zoom.example/j/4,true\n"
        "123456789,500,47,abc,https://zoom.example/j/5,true\n"
        "423456789,300,47,,http://zoom.example/j/6,maybe\n"
    )

    with pytest.raises(PoolFileError) as raised:
        parse_pool(text, fmt="csv", source="region-12.csv")

    problems = raised.value.problems
    assert problems[0].startswith("line 3: meeting_id:")
    assert problems[1].startswith("line 4: capacity:")
    assert problems[2].startswith("line 5: pool:")
    assert problems[3] == "line 6: meeting_id: 123456789 already on line 2"
    assert [p.split(":")[1].strip() for p in problems[4:]] == ["passcode", "join_url", "active"]
    assert all(p.startswith("line 7:") for p in problems[4:])
    assert str(raised.value).startswith("region-12.csv: line 3")


def test_a_csv_without_rooms_or_with_unknown_columns_is_refused() -> None:
    with pytest.raises(PoolFileError, match="lists no rooms"):
        parse_pool(HEADER, fmt="csv")
    with pytest.raises(PoolFileError, match="line 2: colour"):
        parse_pool(
            HEADER.replace("\n", ",colour\n") + "123456789,300,47,a,https://z.example/j,true,red\n",
            fmt="csv",
        )


def test_a_yaml_pool_is_read_and_its_bad_entries_reported_by_line() -> None:
    good = (
        "- meeting_id: 123456789\n"
        "  capacity: 300\n"
        "  pool: '47'\n"
        "  passcode: abc\n"
        "  join_url: https://zoom.example/j/123456789\n"
        "- meeting_id: '9876543210'\n"
        "  capacity: 1000\n"
        "  pool: region-12\n"
        "  passcode: def\n"
        "  join_url: https://zoom.example/j/9876543210\n"
        "  active: false\n"
    )
    rooms = parse_pool(good, fmt="yaml")
    assert [(r.meeting_id, r.pool, r.active) for r in rooms] == [
        ("123456789", "47", True),
        ("9876543210", "region-12", False),
    ]

    bad = good.replace("capacity: 1000", "capacity: 750") + "- just a string\n"
    with pytest.raises(PoolFileError) as raised:
        parse_pool(bad, fmt="yaml")
    assert raised.value.problems[0].startswith("line 6: capacity:")
    assert raised.value.problems[1].startswith("line 12: ")


def test_a_file_that_is_not_a_yaml_list_is_refused() -> None:
    with pytest.raises(PoolFileError, match="must be a list"):
        parse_pool("meeting_id: 123456789\n", fmt="yaml")
    with pytest.raises(PoolFileError, match="not valid YAML"):
        parse_pool("- [unclosed\n", fmt="yaml")


def test_the_public_join_url_drops_the_query_and_the_fragment() -> None:
    """Issue 11.5: a passcode may ride in ``?pwd=`` or in ``#pwd=``; neither is shown."""
    for url in (
        "https://zoom.example/j/123456789?pwd=s3cret",
        "https://zoom.example/j/123456789#pwd=s3cret",
        "https://zoom.example/j/123456789?pwd=s3cret#success",
    ):
        entry = PoolEntry("123456789", 300, "47", "s3cret", url)
        assert entry.public_join_url == "https://zoom.example/j/123456789", url
