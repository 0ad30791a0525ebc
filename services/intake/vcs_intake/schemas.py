"""The HTTP contract of ``/v1``: what offices send and what they read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from vcs_shared.events import Contact, RejectionReason, Urgency, one_line
from vcs_shared.offices import Office, find_office, office_of
from vcs_shared.request_status import Status
from vcs_shared.supervision import SupervisorStatus
from vcs_shared.thaitime import BANGKOK


def _example(schema: JsonDict) -> None:
    """The documented example, for tomorrow morning: a fixed date would go stale (and a window
    in the past is refused)."""
    day = (datetime.now(BANGKOK) + timedelta(days=1)).date().isoformat()
    schema["examples"] = [
        {
            "district_code": "4701",
            "title": "ประชุมติดตามสถานการณ์ประจำสัปดาห์",
            "starts_at": f"{day}T09:00:00+07:00",
            "ends_at": f"{day}T11:00:00+07:00",
            "participants": 250,
            "urgency": "urgent",
            "needs_support": False,
            "contact": {
                "name": "สมชาย ใจดี",
                "email": "somchai@example.go.th",
                "phone": "042-711360",
            },
        }
    ]


class SubmitRequest(BaseModel):
    """A district office asks for a room (times with an offset; Asia/Bangkok is +07:00)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_example)

    district_code: str = Field(description="DOPA district code of the requesting office, e.g. 4701")
    title: str = Field(min_length=1, max_length=300)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: Annotated[int, Field(gt=0, le=100_000, strict=True)]
    urgency: Urgency
    needs_support: bool = Field(strict=True)
    contact: Contact

    @field_validator("district_code")
    @classmethod
    def _known_district(cls, value: str) -> str:
        if find_office(value) is None:
            raise ValueError("not a DOPA district code (four digits, e.g. 4701)")
        return value

    @property
    def office(self) -> Office:
        """The requesting office: the one place the submit path turns the code into an office."""
        return office_of(self.district_code)

    @field_validator("title")
    @classmethod
    def _title_one_line(cls, value: str) -> str:
        """One line of text: it becomes a mail's Subject, a calendar entry, a log field."""
        return one_line(value)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _representable(cls, value: datetime) -> datetime:
        """A time that exists in UTC (``0001-01-01T00:00:00+07:00`` does not)."""
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is outside the times that can be booked") from None
        return value

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if isinstance(starts_at, datetime) and value <= starts_at:
            raise ValueError("must be after starts_at")
        return value


class SubmitAccepted(BaseModel):
    request_id: str
    status: Status


class AssignmentView(BaseModel):
    meeting_id: str
    join_url: str = Field(
        description="The join URL with its passcode; without it when the credentials are "
        "unavailable"
    )
    passcode: str | None = Field(description="null when the credentials are unavailable")
    capacity: int
    credentials_unavailable: str | None = Field(
        default=None,
        description=(
            "Why the passcode cannot be shown, e.g. `credentials unavailable: key retired` "
            "(sealed with a credentials key no longer configured); null normally"
        ),
    )


class RejectionView(BaseModel):
    reason: RejectionReason
    message_th: str
    message_en: str


class RequestView(BaseModel):
    """A request as its office (or an operator of its region) sees it."""

    request_id: str
    status: Status
    district_code: str
    province_code: str
    title: str
    starts_at: datetime
    ends_at: datetime
    participants: int
    urgency: Urgency
    needs_support: bool
    contact: Contact
    submitted_at: datetime
    assignment: AssignmentView | None
    rejection: RejectionView | None
    delivery_error: str | None = None


class RequestSummary(BaseModel):
    """A request in a list: no passcode and no join URL (those only on the request itself)."""

    request_id: str
    status: Status
    district_code: str
    province_code: str
    title: str
    starts_at: datetime
    ends_at: datetime
    participants: int
    urgency: Urgency
    needs_support: bool
    submitted_at: datetime
    meeting_id: str | None = Field(description="The reserved Meeting ID, once assigned")


class RequestPage(BaseModel):
    items: list[RequestSummary]
    next: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class Health(BaseModel):
    status: str
    broker: str
    store: str
    outbox: str
    supervisor: SupervisorStatus | None = Field(
        default=None,
        description="Under `vcs run`: each supervised process, its state and its restarts",
    )
