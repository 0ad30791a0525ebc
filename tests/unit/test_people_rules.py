"""People's rules without I/O: scopes (the same principal as a token), passwords, lockout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError

from vcs_intake.people.accounts import decoy_hash
from vcs_intake.people.model import Lockout, Person, password_problem
from vcs_shared.auth import Role, TokenCodec
from vcs_shared.offices import ALL_PROVINCES, REGION_PROVINCES

pytestmark = pytest.mark.unit

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


def test_an_office_person_is_the_same_principal_as_an_office_token() -> None:
    person = Person.new(email=" Clerk@Example.GO.th ", name="สมศรี", district_code="4701")
    principal = person.principal(session_id="s1", expires_at=EXPIRES)
    codec = TokenCodec("x" * 32)
    token = codec.verify(codec.issue_office("4701", ttl=timedelta(days=1)).token)

    assert person.email == "clerk@example.go.th"
    assert principal.role is Role.office
    assert (principal.district_code, principal.provinces) == (token.district_code, token.provinces)
    assert principal.may_act_for("4701", "47")
    assert not principal.may_act_for("4702", "47")


def test_operators_see_their_region_their_provinces_or_everything() -> None:
    region = Person.new(email="a@x.go.th", name="a", region="12").principal(
        session_id="s", expires_at=EXPIRES
    )
    listed = Person.new(email="b@x.go.th", name="b", provinces=("47",)).principal(
        session_id="s", expires_at=EXPIRES
    )
    national = Person.new(email="c@x.go.th", name="c", national=True).principal(
        session_id="s", expires_at=EXPIRES
    )

    assert region.provinces == REGION_PROVINCES["12"]
    assert listed.provinces == frozenset({"47"})
    assert national.provinces == ALL_PROVINCES
    assert national.national
    assert region.may_act_for("4801", "48")
    assert not listed.may_act_for("4801", "48")
    assert national.may_act_for("1001", "10")


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ({"district_code": "9999"}, "unknown district"),
        ({"district_code": "4701", "region": "12"}, "no region"),
        ({}, "one of"),
        ({"region": "12", "national": True}, "one of"),
        ({"region": "99"}, "unknown region"),
        ({"provinces": ("47", "00")}, "unknown provinces"),
    ],
)
def test_a_person_without_a_clear_scope_is_refused(scope: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Person.new(email="a@x.go.th", name="a", **scope)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("password", "confirmation", "problem"),
    [
        ("long enough pass", "long enough pass", None),
        ("long enough pass", "long enough pasS", "differs"),
        ("short", "short", "too_short"),
        ("x" * 201, "x" * 201, "too_long"),
        ("clerk@example.go.th", "clerk@example.go.th", "is_email"),
    ],
)
def test_password_rules(password: str, confirmation: str, problem: str | None) -> None:
    assert password_problem(password, confirmation, email="Clerk@example.go.th") == problem


def test_wrong_passwords_are_answered_slower_and_slower_then_locked() -> None:
    lockout = Lockout()
    delays = [lockout.delay(n) for n in range(1, 9)]

    assert delays == [0, 0, 0, 1, 2, 4, 8, 8]
    assert [lockout.locks(n) for n in range(1, 8)] == [False] * 5 + [True, True]


def test_the_decoy_hash_costs_a_real_verification_and_matches_no_password() -> None:
    """The unknown-e-mail path verifies against a decoy made without hashing (no Argon2 run,
    and its 64 MiB, when the intake starts): same variant and cost as a real hash, and no
    password matches it."""
    hasher = PasswordHasher()
    decoy = decoy_hash(hasher)

    assert extract_parameters(decoy) == extract_parameters(hasher.hash("a real one"))
    assert decoy != decoy_hash(hasher)  # a fresh salt and digest each time
    with pytest.raises(VerifyMismatchError):
        hasher.verify(decoy, "")
