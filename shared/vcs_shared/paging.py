"""The page cursor of every newest-first list: the sort key of the last item a page showed.

A list sorted by ``(epoch ms, id)`` resumes after that key; the cursor is that key, opaque to
the client (URL-safe base64 without padding). One definition, because the intake's request
list, the desk's board of requests and its audit log page the same way.
"""

from __future__ import annotations

import base64


def encode_cursor(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """``(ms, id)`` of the last item a page showed; ``ValueError`` if not a cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ms, item_id = raw.split(":", 1)
        return int(ms), item_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor from a previous page") from exc
