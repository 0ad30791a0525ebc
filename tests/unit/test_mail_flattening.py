"""The mail on the wire: the notifier flattens it itself, byte for byte as aiosmtplib's
``flatten_message`` does, with the headers that need no folding written as they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.mime.text import MIMEText
from email.policy import compat32

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from vcs_notifier.channels import Notice
from vcs_notifier.domain import Booking, Delivery, MailKind
from vcs_notifier.mailer import _EIGHT_BIT, _SEVEN_BIT, flattened
from vcs_notifier.messages import write_mail
from vcs_shared.credentials import MeetingCredentials
from vcs_shared.events import Contact

pytestmark = pytest.mark.unit

STARTS = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
SENDER = "DOPA VCS <no-reply@vcs.dopa.go.th>"


def notice(kind: MailKind, title: str, name: str) -> Notice:
    booking = Booking("3475946456", 300, STARTS, STARTS + timedelta(hours=1), "sealed")
    delivery = Delivery(
        request_id="5f0b7c9e-2a41-4d7b-9a53-0c1f3e8a9b21",
        contact=Contact(name=name, email="somchai@example.go.th", phone="042-711360"),
        title=title,
        province_code="47",
        district_code="4701",
        created_at=STARTS - timedelta(days=1),
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=1),
        booking=booking,
    )
    credentials = MeetingCredentials(
        passcode="48213907", join_url="https://dopa-vcs.zoom.us/j/3475946456?pwd=a,b;c"
    )
    return Notice(kind, delivery, credentials, at=STARTS)


@pytest.mark.parametrize("kind", [MailKind.assigned, MailKind.cancelled])
@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("ประชุมประจำเดือน", "สมชาย ใจดี"),
        ("Monthly meeting of the district " * 4, 'Somchai "Jai-dee", Palat'),
        ("x", "x"),
    ],
)
@pytest.mark.parametrize("eight_bit", [True, False])
def test_every_mail_is_flattened_byte_for_byte_as_aiosmtplib_flattens_it(
    kind: MailKind, title: str, name: str, eight_bit: bool
) -> None:
    mail = write_mail(notice(kind, title, name), SENDER)

    expected = flatten_message(mail, cte_type="8bit" if eight_bit else "7bit")
    assert flattened(mail, eight_bit=eight_bit) == expected


def test_a_bcc_is_left_out_as_aiosmtplib_leaves_it_out_and_the_mail_keeps_it() -> None:
    mail = write_mail(notice(MailKind.assigned, "ประชุม", "สมชาย"), SENDER)
    mail["Bcc"] = "audit@example.go.th"

    written = flattened(mail, eight_bit=True)

    assert b"audit@example.go.th" not in written
    assert written == flatten_message(mail)
    assert mail["Bcc"] == "audit@example.go.th"


HEADER_NAMES = st.sampled_from(
    ["Content-Type", "MIME-Version", "Content-Transfer-Encoding", "Subject", "X-VCS-Request-Id"]
)


@settings(max_examples=500, deadline=None)
@given(
    name=HEADER_NAMES,
    value=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=90)
    | st.text(alphabet=' \t;,"=:ab-', max_size=90),
)
def test_a_header_is_folded_as_compat32_folds_it_whatever_its_value(name: str, value: str) -> None:
    """Plain values that fit are written as they are, which is what compat32 makes of them;
    anything else (control characters, spaces at an end, too long) goes through compat32."""
    seven_bit = compat32.clone(cte_type="7bit")
    for folding, reference in ((_EIGHT_BIT, compat32), (_SEVEN_BIT, seven_bit)):
        try:
            expected = reference.fold_binary(name, value)
        except Exception as refused:  # compat32 refuses some values: so must the notifier
            with pytest.raises(type(refused)):
                folding.fold_binary(name, value)
        else:
            assert folding.fold_binary(name, value) == expected


def test_a_text_part_flattens_the_same_with_either_transfer_encoding() -> None:
    part = MIMEText("สวัสดี", "plain", "utf-8")

    assert flattened(part, eight_bit=False) == flatten_message(part, cte_type="7bit")
