"""Mail headers built with the standard library's header API, so no text can break a mail.

Whatever an office typed (a title with a line break, a vertical tab, ``\\u2028``; a
300-character title; a contact name with quotes or commas) becomes a header the
standard library encodes itself (RFC 2047 for Thai, folded lines, quoted display
names): control and format characters are turned into spaces first, long
subjects shortened on a word boundary. Addresses are
:class:`email.headerregistry.Address` objects, so an address that cannot be one is
refused while the mail is written (:class:`ValueError`), which the mail channel
records as a permanent failure.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr

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


def sender_mailbox(text: str) -> Address:
    """``VCS_MAIL_FROM`` (``Name <address>`` or a bare address) as a header object."""
    name, address = parseaddr(text)
    if not address:
        raise ValueError(f"not a mail address: {text!r}")
    return mailbox(name, address)


def set_headers(
    message: EmailMessage,
    *,
    sender: str,
    recipient: Address,
    subject: str,
    message_id: str,
    request_id: str,
    date: datetime,
) -> None:
    """The headers every mail of DOPA VCS has, each through the header registry."""
    message["From"] = sender_mailbox(sender)
    message["To"] = recipient
    message["Subject"] = one_line(subject)
    message["Date"] = date
    message["Message-ID"] = message_id
    message["X-VCS-Request-Id"] = one_line(request_id)
