"""Jinja2 pages in the person's language: one environment per locale, so concurrent
requests in Thai and English never share installed translations."""

from __future__ import annotations

import gettext
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request

from vcs_intake.web import dates
from vcs_intake.web.i18n import N_, Locale, load_catalogs, locale_of
from vcs_shared.events import Urgency
from vcs_shared.offices import find_office

TEMPLATES = Path(__file__).parent / "templates"

STATUS_LABELS = {
    "submitted": N_("Submitted: finding a room"),
    "assigned": N_("Room reserved: sending the details"),
    "delivered": N_("Room ready"),
    "rejected": N_("Not possible"),
    "cancelled": N_("Cancelled"),
    "delivery_failed": N_("Room ready, but the e-mail failed"),
}
REJECTION_LABELS = {
    "no_room_free": N_("No room free"),
    "capacity_exceeded": N_("Too many participants"),
    "window_invalid": N_("Invalid time"),
    "unknown_office": N_("Unknown office"),
    "pool_empty": N_("No rooms in the pool"),
}
"""Short names of :class:`vcs_shared.events.RejectionReason` for tables (the clerks' pages
give the longer advice)."""
URGENCY_THAI = {
    Urgency.normal: "ปกติ",
    Urgency.urgent: "ด่วน",
    Urgency.very_urgent: "ด่วนมาก",
    Urgency.most_urgent: "ด่วนที่สุด",
}
URGENCY_ENGLISH = {
    Urgency.normal: "Normal",
    Urgency.urgent: "Urgent",
    Urgency.very_urgent: "Very urgent",
    Urgency.most_urgent: "Most urgent",
}


class Pages:
    def __init__(self) -> None:
        catalogs = load_catalogs()
        self.translations = catalogs
        self.environments = {
            locale: _environment(locale, t, catalogs["th"]) for locale, t in catalogs.items()
        }

    def gettext(self, request: Request) -> Callable[[str], str]:
        return self.translations[locale_of(request)].gettext

    def render(
        self, request: Request, template: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        locale = locale_of(request)
        page = self.environments[locale].get_template(template)
        html = page.render(
            request=request, locale=locale, csrf_input=_csrf_input(request), **context
        )
        return HTMLResponse(html, status_code=status_code, headers={**NO_STORE, **PAGE_POLICY})

    def fragment(self, request: Request, template: str, **context: Any) -> str:
        locale = locale_of(request)
        page = self.environments[locale].get_template(template)
        return page.render(request=request, locale=locale, **context)


# Pages show credentials and personal data: never kept by shared caches or the back button.
NO_STORE = {"Cache-Control": "no-store"}
# Everything a page uses comes from the intake itself; nothing runs or loads from elsewhere,
# and no other site may frame a page or receive its forms.
PAGE_POLICY = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _csrf_input(request: Request) -> Callable[[], Markup]:
    """``{{ csrf_input() }}`` in every form: the token of the CSRF middleware (asgi-csrf),
    which sets its cookie on the pages that ask for it."""

    def hidden() -> Markup:
        token = request.scope["csrftoken"]()
        return Markup('<input type="hidden" name="csrftoken" value="{}">').format(token)

    return hidden


def office_th(district_code: str) -> str:
    """``ที่ทำการปกครองอำเภอเมืองสกลนคร จังหวัดสกลนคร``; Bangkok's khet: ``สำนักงานเขตพระนคร``."""
    office = find_office(district_code)
    return office.title_th if office else district_code


def office_en(district_code: str) -> str:
    office = find_office(district_code)
    return office.title_en if office else district_code


def _environment(
    locale: Locale, translations: gettext.NullTranslations, thai: gettext.NullTranslations
) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    in_thai = locale == "th"

    def long_date(moment: date | datetime) -> str:
        if in_thai:
            return dates.thai_date(moment, weekday=True)
        return dates.english_date(moment, weekday=True)

    def short_date(moment: date | datetime) -> str:
        return dates.thai_date_abbreviated(moment) if in_thai else dates.english_date(moment)

    def urgency(value: str) -> str:
        grade = Urgency(value)
        return URGENCY_THAI[grade] if in_thai else URGENCY_ENGLISH[grade]

    def status(value: str) -> str:
        return translations.gettext(STATUS_LABELS.get(value, value))

    def rejection(value: str) -> str:
        return translations.gettext(REJECTION_LABELS.get(value, value))

    def day(value: str) -> str:
        """An owner's ISO day (``2026-12-06``) as :func:`short_date` shows it."""
        try:
            return short_date(date.fromisoformat(value))
        except ValueError:
            return value

    def status_th(value: str) -> str:
        return thai.gettext(STATUS_LABELS.get(value, value))

    def office(district_code: str) -> str:
        return office_th(district_code) if in_thai else office_en(district_code)

    def moment(value: object) -> datetime | None:
        """An owner's ISO time (``2026-12-03T02:00:00Z``) as an aware datetime."""
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return None

    def when(value: object) -> str:
        """``พฤ. 3 ธ.ค. 2569 09:00`` (Asia/Bangkok) of a datetime or an owner's ISO time."""
        found = moment(value)
        return f"{short_date(found)} {dates.clock(found)}" if found else "—"

    environment.filters.update(
        moment=moment,
        when=when,
        long_date=long_date,
        short_date=short_date,
        clock=dates.clock,
        urgency=urgency,
        status=status,
        rejection=rejection,
        day=day,
        office=office,
        # The printable confirmation is in Thai whatever the page language.
        office_th=office_th,
        urgency_th=lambda value: URGENCY_THAI[Urgency(value)],
        thai_official_date=dates.thai_official_date,
        status_th=status_th,
    )
    environment.globals.update(urgencies=list(Urgency))
    return environment
