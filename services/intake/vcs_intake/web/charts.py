"""Charts drawn on the server as SVG (no chart library, nothing loaded from elsewhere)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 220, 28


def utilisation_chart(rows: Iterable[Mapping[str, Any]], *, label: str) -> Markup | None:
    """One bar per day: hours booked as a share of the hours available (all the rows'
    provinces together), with the percentage above it."""
    booked: defaultdict[str, float] = defaultdict(float)
    available: defaultdict[str, float] = defaultdict(float)
    for row in rows:
        day = str(row.get("date", ""))
        booked[day] += float(row.get("hours_booked") or 0)
        available[day] += float(row.get("hours_available") or 0)
    days = sorted(available)
    if not days:
        return None
    slot = (WIDTH - 2 * PAD) / len(days)
    bar = max(4.0, slot * 0.6)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
        'xmlns="http://www.w3.org/2000/svg" class="bars">',
        f"<title>{escape(label)}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'class="axis"/>',
    ]
    room = HEIGHT - 2 * PAD
    for index, day in enumerate(days):
        share = booked[day] / available[day] if available[day] else 0.0
        height = room * min(share, 1.0)
        x = PAD + index * slot + (slot - bar) / 2
        y = HEIGHT - PAD - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" class="bar">'
            f"<title>{escape(day)}: {booked[day]:g} / {available[day]:g} h</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{share:.0%}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">'
            f"{_day_month(day)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _day_month(day: str) -> str:
    """``6/12`` for 2026-12-06: day first, as Thai dates are written (the table has the year)."""
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        return str(escape(day))
    return f"{parsed.day}/{parsed.month}"
