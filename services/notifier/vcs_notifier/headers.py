"""Mail headers that no text can break, written once as the wire carries them.

Whatever an office typed (a title with a line break, a vertical tab, ``\\u2028``; a
300-character title; a contact name with quotes or commas) becomes a safe header:
control and format characters are turned into spaces first, long subjects
shortened on a word boundary, Thai encoded by the standard library (RFC 2047
encoded words, folded lines), display names quoted. Addresses are checked as
:class:`email.headerregistry.Address` objects, so an address that cannot be one
is refused while the mail is written (:class:`ValueError`), which the mail
channel records as a permanent failure.

The headers go onto a ``compat32`` message as finished strings and
:class:`~email.header.Header` objects rather than through the header registry of
``EmailMessage``: the registry parses every header when it is set and again when
the mail is written, which was a third of the notifier's CPU per mail (issue 18).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.utils import format_datetime, formataddr, parseaddr
from functools import cache

SUBJECT_TITLE_LIMIT = 60
"""Characters of a meeting's title in a Subject; the whole title is in the body."""
ELLIPSIS = "…"
_SPACES = re.compile(r"\s+")


def one_line(text: str) -> str:
    """``text`` with every control, format or separator character (line and paragraph
    separators, tabs, ``\\x85``) turned into one space, and runs of spaces collapsed."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)
    return _SPACES.sub(" ", kept).strip()


def shortened(text: str, limit: int = SUBJECT_TITLE_LIMIT) -> str:
    """``text`` on one line, at most ``limit`` characters: cut at the last space before the
    limit (or mid-word when there is none in its second half) and ended with an ellipsis."""
    line = one_line(text)
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" -:,") + ELLIPSIS


def mailbox(name: str, address: str) -> Address:
    """A recipient as a header object: the display name on one line, the address checked."""
    return Address(display_name=one_line(name), addr_spec=address)


@cache
def sender_mailbox(text: str) -> Address:
    """``VCS_MAIL_FROM`` (``Name <address>`` or a bare address) as a header object; parsed
    once per process (the setting does not change, and every mail names it twice: From and
    the invitation's organizer)."""
    name, address = parseaddr(text)
    if not address:
        raise ValueError(f"not a mail address: {text!r}")
    return mailbox(name, address)


def set_headers(
    message: Message,
    *,
    sender: str,
    recipient: Address,
    subject: str,
    message_id: str,
    request_id: str,
    date: datetime,
) -> None:
    """The headers every mail of DOPA VCS has, each one line, encoded where it is not ASCII."""
    message["From"] = sender_header(sender)
    message["To"] = address_header("To", recipient)
    message["Subject"] = text_header("Subject", one_line(subject))
    message["Date"] = format_datetime(date)
    message["Message-ID"] = one_line(message_id)
    message["X-VCS-Request-Id"] = one_line(request_id)


@cache
def sender_header(sender: str) -> str:
    """The From header of ``VCS_MAIL_FROM``, written once per process."""
    return address_header("From", sender_mailbox(sender))


def address_header(name: str, address: Address) -> str:
    """``Name <address>``: an ASCII name quoted where it must be, a Thai one as encoded
    words (each within RFC 2047's 75 characters, which ``formataddr`` does not keep)."""
    if address.display_name.isascii():
        return formataddr((address.display_name, address.addr_spec))
    header = Header(address.display_name, "utf-8", header_name=name)
    header.append(f"<{address.addr_spec}>", "us-ascii")
    return header.encode()


def text_header(name: str, text: str) -> str:
    """An unstructured header's value: as it is when ASCII, else encoded words, folded to
    fit the line after ``name``."""
    return text if text.isascii() else Header(text, "utf-8", header_name=name).encode()
