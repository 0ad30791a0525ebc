"""Times as offices read them: Asia/Bangkok, Buddhist-era dates in Thai (via pythainlp)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pythainlp.util import thai_strftime

BANGKOK = ZoneInfo("Asia/Bangkok")


def thai_datetime(moment: datetime) -> str:
    """E.g. ``วันพฤหัสบดี 26 พฤศจิกายน 2569 เวลา 09:00 น.``"""
    return thai_strftime(moment.astimezone(BANGKOK), "%A %-d %B %Y เวลา %H:%M น.")
