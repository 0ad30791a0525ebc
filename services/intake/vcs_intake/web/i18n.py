"""Thai first, English on request: gettext catalogs compiled from the committed ``.po`` files.

The message ids are English; ``locale/th/LC_MESSAGES/messages.po`` holds the Thai.
Catalogs are compiled in memory when the intake starts (babel), so there is no
build step and no compiled file to forget. A person's choice is a cookie set by
``/language``; without one, pages are Thai.
"""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path
from typing import Literal, get_args

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

Locale = Literal["th", "en"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
DEFAULT_LOCALE: Locale = "th"
LANGUAGE_COOKIE = "vcs_lang"
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Marks a message for extraction where it is defined; it is translated where shown."""
    return message


def load_catalogs(locale_dir: Path = LOCALE_DIR) -> dict[Locale, gettext.NullTranslations]:
    """Each locale's translations; English is the message ids themselves."""
    catalogs: dict[Locale, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
    for locale in LOCALES:
        path = locale_dir / locale / "LC_MESSAGES" / "messages.po"
        if locale == "en" or not path.exists():
            continue
        with path.open("rb") as po:
            catalog = read_po(po, locale=locale)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        catalogs[locale] = Translations(compiled)
    return catalogs


def locale_of(request: Request) -> Locale:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    for locale in LOCALES:
        if chosen == locale:
            return locale
    return DEFAULT_LOCALE
