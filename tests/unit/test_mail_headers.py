"""Mail headers through the header API (issue 11.2): any text becomes one safe line."""

from __future__ import annotations

import pytest

from vcs_notifier.headers import SUBJECT_TITLE_LIMIT, mailbox, one_line, sender_mailbox, shortened

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
