"""Every text of the pages has its Thai translation; the catalogs compile when the intake starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from vcs_intake.web.i18n import LOCALE_DIR, load_catalogs

pytestmark = pytest.mark.unit

INTAKE = Path(__file__).resolve().parents[2] / "services" / "intake"
METHODS = [
    ("vcs_intake/**.py", "python"),
    ("vcs_intake/web/templates/**.html", "jinja2"),
]
OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"}}


def test_every_message_of_the_pages_has_a_thai_translation() -> None:
    extracted = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(INTAKE), METHODS, options_map=OPTIONS
        )
        if isinstance(message, str)
    }
    with (LOCALE_DIR / "th" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}

    assert len(extracted) > 80
    assert sorted(extracted - translated) == []  # run `make messages`, then translate


def test_the_catalogs_compile_and_thai_is_thai() -> None:
    catalogs = load_catalogs()

    assert catalogs["th"].gettext("Sign in") == "เข้าสู่ระบบ"
    assert catalogs["en"].gettext("Sign in") == "Sign in"
