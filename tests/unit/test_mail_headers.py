"""Mail headers through the header API (issue 11.2): any text becomes one safe line."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.mime.text import MIMEText

import pytest

from vcs_notifier.headers import (
    SUBJECT_TITLE_LIMIT,
    mailbox,
    one_line,
    sender_mailbox,
    set_headers,
    shortened,
)

pytestmark = pytest.mark.unit

BREAKERS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\t", "\x00"]


@pytest.mark.parametrize("breaker", BREAKERS)
def test_every_line_breaking_or_control_character_becomes_one_space(breaker: str) -> None:
    assert one_line(f"ประชุม{breaker}Bcc: x@example.com") == "ประชุม Bcc: x@example.com"


def test_a_long_title_is_cut_on_a_word_boundary_with_an_ellipsis() -> None:
    title = "ประชุมติดตาม สถานการณ์ " * 20

    short = shortened(title)

    assert len(short) <= SUBJECT_TITLE_LIMIT
    assert short.endswith("…")
    assert title.startswith(short.removesuffix("…"))
    assert not short.removesuffix("…").endswith(" ")
    assert shortened("สั้น ๆ") == "สั้น ๆ"


def test_a_title_without_spaces_is_cut_mid_word() -> None:
    assert shortened("ก" * 300) == "ก" * (SUBJECT_TITLE_LIMIT - 1) + "…"


def test_addresses_are_header_objects_and_a_bad_one_is_refused() -> None:
    assert str(mailbox('สมชาย "ใจดี"\n', "somchai@example.go.th")) == (
        '"สมชาย \\"ใจดี\\"" <somchai@example.go.th>'
    )
    assert sender_mailbox("DOPA VCS <no-reply@vcs.dopa.go.th>").addr_spec == (
        "no-reply@vcs.dopa.go.th"
    )
    with pytest.raises(ValueError, match="non-ASCII"):
        mailbox("x", "สมชาย@example.go.th")
    with pytest.raises(ValueError, match="not a mail address"):
        sender_mailbox("")


def test_hostile_text_arrives_as_the_same_one_line_headers_and_nothing_more() -> None:
    title = "ประชุม\r\nBcc: spy@example.com\u2028ด่วน " + "ก" * 40
    name = 'ผอ. "สมชาย", ฝ่าย\nปกครอง'
    message = MIMEText("x", "plain", "utf-8")
    set_headers(
        message,
        sender="DOPA VCS <no-reply@vcs.dopa.go.th>",
        recipient=mailbox(name, "somchai@example.go.th"),
        subject=f"DOPA VCS: {title}",
        message_id="<assigned.r-1@vcs.dopa.go.th>",
        request_id="r-1\nBcc: spy@example.com",
        date=datetime(2026, 12, 7, 2, 0, tzinfo=UTC),
    )

    received = email.message_from_bytes(message.as_bytes(), policy=policy.default)

    assert received["Subject"] == f"DOPA VCS: {one_line(title)}"
    # the name decoded by RFC 2047's rules (the header registry keeps a space between
    # encoded words in a display name, with EmailMessage's own folding too)
    to = str(make_header(decode_header(email.message_from_bytes(message.as_bytes())["To"])))
    assert to == f"{one_line(name)} <somchai@example.go.th>"
    assert received["To"].addresses[0].addr_spec == "somchai@example.go.th"
    assert received["From"].addresses[0].addr_spec == "no-reply@vcs.dopa.go.th"
    assert received["Date"].datetime == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert received["X-VCS-Request-Id"] == "r-1 Bcc: spy@example.com"
    assert received["Bcc"] is None
    assert all(len(line) <= 78 for line in message.as_bytes().split(b"\n"))
