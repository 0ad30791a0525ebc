"""The clerks' new-request form: its fields (a public contract: scripts and browsers' form
filling rely on the names), how they become the API's :class:`SubmitRequest`, and the
message shown next to a field that is wrong.

Messages are English msgids (translated when shown, Thai by default). What is typed
is kept as typed, so a page with an error shows everything the clerk entered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from pydantic import ValidationError
from pythainlp.util import thai_digit_to_arabic_digit

from vcs_intake.domain import RequestState
from vcs_intake.people.model import Person
from vcs_intake.schemas import SubmitRequest
from vcs_intake.web.dates import DateInputError, bangkok, parse_date, parse_time
from vcs_intake.web.i18n import N_
from vcs_shared.events import Urgency

FIELDS = (
    "title",
    "date",
    "start_time",
    "end_time",
    "participants",
    "urgency",
    "needs_support",
    "contact_name",
    "contact_email",
    "contact_phone",
)
T = TypeVar("T")
URGENCY_VALUES = frozenset(u.value for u in Urgency)
WINDOW_FIELDS = frozenset({"date", "start_time", "end_time"})
# Where an error of the API model shows on the form.
FIELD_OF_LOCATION = {
    "title": "title",
    "starts_at": "start_time",
    "ends_at": "end_time",
    "participants": "participants",
    "urgency": "urgency",
    "needs_support": "needs_support",
    "contact.name": "contact_name",
    "contact.email": "contact_email",
    "contact.phone": "contact_phone",
}
FALLBACK_MESSAGES = {
    "title": N_("Write what the meeting is about (at most 300 characters, on one line)."),
    "date": N_("Write the date as day/month/Buddhist-era year, e.g. 3/12/2569."),
    "start_time": N_("This start time cannot be booked; choose another."),
    "end_time": N_("The meeting must end after it starts."),
    "participants": N_("Write how many people will join, as a number (1 to 100,000)."),
    "urgency": N_("Choose one of the urgency grades."),
    "needs_support": N_("Tick the box or leave it empty."),
    "contact_name": N_("Write the name of the person to contact."),
    "contact_email": N_("Write an e-mail address such as name@example.go.th."),
    "contact_phone": N_("Write a phone number with digits only, e.g. 042-711360."),
}


@dataclass
class RequestForm:
    """What was typed into the form, and a message per field that is wrong."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, person: Person, *, last_phone: str | None = None) -> RequestForm:
        """An empty form, its contact filled in from the person signed in."""
        values = dict.fromkeys(FIELDS, "")
        values["urgency"] = Urgency.normal.value
        values["contact_name"] = person.name
        values["contact_email"] = person.email
        values["contact_phone"] = person.phone or last_phone or ""
        return cls(values)

    @classmethod
    def again(cls, previous: RequestState, person: Person) -> RequestForm:
        """The form filled from an earlier request (after a rejection: try another time)."""
        form = cls.blank(person)
        form.values.update(
            title=previous.title,
            participants=str(previous.participants),
            urgency=previous.urgency.value,
            needs_support="on" if previous.needs_support else "",
            contact_name=previous.contact.name,
            contact_email=str(previous.contact.email),
            contact_phone=previous.contact.phone,
        )
        return form

    @classmethod
    def posted(cls, data: Mapping[str, str]) -> RequestForm:
        return cls({name: str(data.get(name, "")) for name in FIELDS})

    def to_request(self, district_code: str, *, now: datetime) -> SubmitRequest | None:
        """The API's request, or None with :attr:`errors` filled in (every wrong field at once)."""
        day = self._parse("date", parse_date, N_("Choose the day of the meeting."))
        start = self._parse("start_time", parse_time, N_("Write a time such as 09:00."))
        end = self._parse("end_time", parse_time, N_("Write a time such as 09:00."))
        if self.values["urgency"] not in URGENCY_VALUES:
            self.errors["urgency"] = FALLBACK_MESSAGES["urgency"]
        if not _digits(self.values["participants"]).isdigit():
            self.errors["participants"] = FALLBACK_MESSAGES["participants"]
        if day is not None and start is not None and end is not None:
            if end <= start:
                self.errors["end_time"] = FALLBACK_MESSAGES["end_time"]
            elif bangkok(day, start) <= now:
                self.errors["date"] = N_("The meeting must start later than now.")
        # With the window or a number unusable, the other fields are still checked, with
        # harmless stand-ins, so that every error shows at once.
        stand_ins = bool(self.errors)
        if stand_ins or day is None or start is None or end is None:
            day, start, end = (now + timedelta(days=1)).date(), time(9), time(10)
        try:
            request = SubmitRequest.model_validate(self._body(district_code, day, start, end))
        except ValidationError as exc:
            self._show(exc, window_known=not stand_ins)
            return None
        return None if stand_ins else request

    def _parse(self, name: str, parse: Callable[[str], T], missing: str) -> T | None:
        text = self.values[name]
        if not text.strip():
            self.errors[name] = missing
            return None
        try:
            return parse(text)
        except DateInputError:
            self.errors[name] = FALLBACK_MESSAGES["date"] if name == "date" else missing
            return None

    def _body(self, district_code: str, day: date, start: time, end: time) -> dict[str, object]:
        values = self.values
        participants = _digits(values["participants"])
        urgency = values["urgency"]
        return {
            "district_code": district_code,
            "title": values["title"],
            "starts_at": bangkok(day, start),
            "ends_at": bangkok(day, end),
            "participants": int(participants) if participants.isdigit() else 1,
            "urgency": urgency if urgency in URGENCY_VALUES else Urgency.normal.value,
            "needs_support": values["needs_support"] in ("on", "true", "1", "yes"),
            "contact": {
                "name": values["contact_name"].strip(),
                "email": values["contact_email"].strip(),
                "phone": values["contact_phone"].strip(),
            },
        }

    def _show(self, exc: ValidationError, *, window_known: bool) -> None:
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"])
            name = FIELD_OF_LOCATION.get(location, "start_time")  # else: a rule of the window
            if name in WINDOW_FIELDS and not window_known:
                continue  # about the stand-in window, not what was typed
            self.errors.setdefault(name, FALLBACK_MESSAGES[name])


def _digits(text: str) -> str:
    """``1,000`` or ``๑๐๐`` as the digits a number is read from."""
    return thai_digit_to_arabic_digit(text.strip().replace(",", ""))
