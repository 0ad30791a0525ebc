"""The office's mail carries the booking's own passcode, the one the running allocator set on
the Meeting ID through the fake Zoom API (a real local HTTP server), not the pool's."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from tests.support.zoom_fake import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, FakeZoom
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.e2e


@pytest.fixture
def pool_passcodes(service_env: dict[str, str]) -> set[str]:
    """The passcodes of the pool file the allocator loads."""
    text = Path(service_env["VCS_POOL_FILE"]).read_text(encoding="utf-8")
    return {row["passcode"] for row in csv.DictReader(io.StringIO(text))}


async def test_the_office_is_mailed_the_fresh_passcode_zoom_was_given(
    start_services: StartServices,
    http: httpx.AsyncClient,
    smtp_sink: SmtpSink,
    zoom: FakeZoom,
    pool_passcodes: set[str],
) -> None:
    await start_services(
        extra_env={
            "VCS_ZOOM_ACCOUNT_ID": ACCOUNT_ID,
            "VCS_ZOOM_CLIENT_ID": CLIENT_ID,
            "VCS_ZOOM_CLIENT_SECRET": CLIENT_SECRET,
            "VCS_ZOOM_API_URL": zoom.api_url,
            "VCS_ZOOM_OAUTH_URL": zoom.oauth_url,
            "VCS_ZOOM_POLL_SECONDS": "0.5",
            # The change is due at the start of the 4-hour buffer: for a meeting two hours
            # ahead, at once.
            "VCS_BUFFER_MINUTES": "240",
        }
    )
    starts_at = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)

    response = await http.post("/v1/requests", json=request_body(starts_at=starts_at, hours=1))
    assert response.status_code == 202
    final = await wait_status(http, response.json()["request_id"], "delivered")
    [patch] = await zoom.wait_for_patches(1)

    assignment = final["assignment"]
    assert (patch.meeting_id, patch.password) == (assignment["meeting_id"], assignment["passcode"])
    assert patch.password not in pool_passcodes
    [mail] = smtp_sink.messages
    body = mail.get_body(("plain",))
    assert body is not None
    assert patch.password in body.get_content()
    assert zoom.passcodes_of(patch.meeting_id) == [patch.password]
