"""Tokens: what verifies, what is refused, and who may act for which office."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.support.auth import codec as test_codec
from tests.support.auth import expired_token, foreign_token, tampered_token
from vcs_shared.auth import (
    ALGORITHM,
    INTERNAL_AUDIENCE,
    InternalAuthenticator,
    InvalidToken,
    IssuedToken,
    Role,
    TokenCodec,
)
from vcs_shared.offices import ALL_PROVINCES

pytestmark = pytest.mark.unit

SECRET = secrets.token_urlsafe(48)
codec = TokenCodec(SECRET)
HOUR = timedelta(hours=1)


def test_an_office_token_names_its_district_and_nothing_else() -> None:
    issued = codec.issue_office("4701", ttl=HOUR)

    principal = codec.verify(issued.token)

    assert principal.role is Role.office
    assert principal.district_code == "4701"
    assert principal.subject == "office:4701"
    assert principal.provinces == frozenset()
    assert principal.jti == issued.claims.jti
    assert principal.may_act_for("4701", "47")
    assert not principal.may_act_for("4702", "47")


def test_an_operator_of_region_12_acts_for_its_provinces_only() -> None:
    principal = codec.verify(codec.issue_operator("somsri", region="12", ttl=HOUR).token)

    assert principal.role is Role.operator
    assert principal.provinces == frozenset({"47", "48", "49", "38"})
    assert principal.may_act_for("4701", "47")
    assert principal.may_act_for("4801", "48")
    assert not principal.may_act_for("1001", "10")


def test_an_operator_may_hold_a_province_list_instead_of_a_region() -> None:
    principal = codec.verify(codec.issue_operator("bkk", provinces=("10", "12"), ttl=HOUR).token)

    assert principal.region is None
    assert principal.provinces == frozenset({"10", "12"})
    assert principal.may_act_for("1001", "10")
    assert not principal.may_act_for("4701", "47")


def test_every_token_has_its_own_id_and_an_expiry() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    first = codec.issue_office("4701", ttl=HOUR, now=now).claims
    second = codec.issue_office("4701", ttl=HOUR, now=now).claims

    assert first.jti != second.jti
    assert first.iat == int(now.timestamp())
    assert first.expires_at == now + HOUR


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (expired_token(), "expired"),
        (tampered_token(), "not valid"),
        (foreign_token(), "not valid"),
        ("not-a-token", "not valid"),
        ("", "not valid"),
    ],
    ids=["expired", "tampered", "other-secret", "garbage", "empty"],
)
def test_bad_tokens_are_refused(token: str, message: str) -> None:
    with pytest.raises(InvalidToken, match=message):
        test_codec.verify(token)


def test_an_unsigned_token_is_refused() -> None:
    claims = codec.issue_office("4701", ttl=HOUR).claims.model_dump(mode="json", exclude_none=True)
    del claims["provinces"]
    unsigned = jwt.encode(claims, key="", algorithm="none")

    with pytest.raises(InvalidToken):
        codec.verify(unsigned)


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "office", "district_code": "4799"},
        {"role": "office"},
        {"role": "office", "district_code": "4701", "region": "12"},
        {"role": "operator"},
        {"role": "operator", "region": "99"},
        {"role": "operator", "provinces": ["99"]},
        {"role": "operator", "region": "12", "district_code": "4701"},
        {"role": "admin", "region": "12"},
    ],
    ids=[
        "unknown-district",
        "office-without-district",
        "office-with-region",
        "operator-of-nowhere",
        "unknown-region",
        "unknown-province",
        "operator-with-district",
        "unknown-role",
    ],
)
def test_a_correctly_signed_token_naming_no_valid_identity_is_refused(
    claims: dict[str, object],
) -> None:
    now = int(datetime.now(UTC).timestamp())
    payload = {"iss": "dopa-vcs", "sub": "x", "iat": now, "exp": now + 3600, "jti": "j1", **claims}
    token = jwt.encode(payload, SECRET, algorithm=ALGORITHM)

    with pytest.raises(InvalidToken, match="no valid identity"):
        codec.verify(token)


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub", "iss"])
def test_a_token_without_a_required_claim_is_refused(missing: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    payload = {
        "iss": "dopa-vcs",
        "sub": "office:4701",
        "role": "office",
        "district_code": "4701",
        "iat": now,
        "exp": now + 3600,
        "jti": "j1",
    }
    del payload[missing]

    with pytest.raises(InvalidToken):
        codec.verify(jwt.encode(payload, SECRET, algorithm=ALGORITHM))


def test_an_expired_token_can_still_be_read_for_revoking() -> None:
    claims = test_codec.claims(expired_token(), allow_expired=True)

    assert claims.district_code == "4701"
    assert claims.expires_at < datetime.now(UTC)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenCodec("too-short")


def test_issuing_for_an_unknown_office_or_region_fails_loudly() -> None:
    with pytest.raises(ValueError, match="district_code"):
        codec.issue_office("4799", ttl=HOUR)
    with pytest.raises(ValueError, match="unknown region"):
        codec.issue_operator("x", region="99", ttl=HOUR)


def test_a_national_operator_acts_for_every_province() -> None:
    issued = codec.issue_operator("hq", national=True, ttl=HOUR)
    principal = codec.verify(issued.token)

    assert principal.national
    assert principal.provinces == ALL_PROVINCES
    assert len(principal.provinces) == 77
    assert principal.may_act_for("1001", "10")
    assert principal.may_act_for("4701", "47")
    with pytest.raises(ValueError, match="national operator token lists no region"):
        codec.issue_operator("hq", national=True, region="12", ttl=HOUR)


@pytest.mark.parametrize(
    ("issue", "cap"),
    [
        (lambda ttl: codec.issue_office("4701", ttl=ttl), timedelta(days=90)),
        (lambda ttl: codec.issue_operator("x", region="12", ttl=ttl), timedelta(hours=12)),
    ],
    ids=["office-90-days", "operator-12-hours"],
)
def test_a_lifetime_over_the_cap_is_refused_at_issue_and_at_verification(
    issue: Callable[[timedelta], IssuedToken], cap: timedelta
) -> None:
    assert issue(cap).claims.exp - issue(cap).claims.iat == cap.total_seconds()
    with pytest.raises(ValueError, match="over the cap"):
        issue(cap + timedelta(seconds=1))

    now = int(datetime.now(UTC).timestamp())
    claims = issue(cap).claims.model_dump(mode="json", exclude_none=True)
    claims.update(iat=now, exp=now + int(cap.total_seconds()) + 60)
    signed = jwt.encode(claims, SECRET, algorithm=ALGORITHM)
    with pytest.raises(InvalidToken, match="over the cap"):
        codec.verify(signed)


def test_an_internal_token_carries_the_callers_identity_for_60_seconds_and_only_inside() -> None:
    callers = [
        codec.verify(codec.issue_office("4701", ttl=HOUR).token),
        codec.verify(
            codec.issue_operator("somsri", region="12", provinces=("10",), ttl=HOUR).token
        ),
        codec.verify(codec.issue_operator("hq", national=True, ttl=HOUR).token),
    ]
    for caller in callers:
        token = codec.internal_token(caller)
        inside = codec.verify_internal(token)

        assert (inside.subject, inside.role, inside.district_code) == (
            caller.subject,
            caller.role,
            caller.district_code,
        )
        assert (inside.provinces, inside.national) == (caller.provinces, caller.national)
        claims = codec.claims(token, audience=INTERNAL_AUDIENCE)
        assert claims.exp - claims.iat == 60
        assert claims.jti != caller.jti
        with pytest.raises(InvalidToken, match="internal token is not accepted here"):
            codec.verify(token)  # the front door
        with pytest.raises(InvalidToken, match="only internal tokens"):
            codec.verify_internal(codec.issue_office("4701", ttl=HOUR).token)


def test_an_internal_token_living_longer_than_60_seconds_is_refused() -> None:
    now = int(datetime.now(UTC).timestamp())
    payload = {
        "iss": "dopa-vcs",
        "sub": "operator:x",
        "role": "operator",
        "national": True,
        "aud": INTERNAL_AUDIENCE,
        "iat": now,
        "exp": now + 61,
        "jti": "j1",
    }

    with pytest.raises(InvalidToken, match="over the cap of 60 seconds for internal"):
        codec.verify_internal(jwt.encode(payload, SECRET, algorithm=ALGORITHM))


async def test_an_internal_authenticator_takes_only_internal_tokens() -> None:
    caller = codec.verify(codec.issue_operator("somsri", region="12", ttl=HOUR).token)
    authenticator = InternalAuthenticator(codec)

    assert (
        await authenticator.authenticate(codec.internal_token(caller))
    ).subject == caller.subject
    with pytest.raises(InvalidToken):
        await authenticator.authenticate(codec.issue_operator("s", region="12", ttl=HOUR).token)
