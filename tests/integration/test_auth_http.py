"""Who may do what over HTTP, against the running intake with real tokens.

No token or a bad one: 401 with a Bearer challenge. An office acts for its own
district only (403 on a forged submit) and cannot tell whether another office's
request exists (404). An operator acts for its region's offices, and only there.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.auth import (
    bearer,
    expired_token,
    foreign_token,
    office_token,
    operator_token,
    tampered_token,
)
from tests.support.requests import request_body
from tests.support.services import StartServices

pytestmark = pytest.mark.integration

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def submit(http: httpx.AsyncClient, token: str, district_code: str) -> httpx.Response:
    return await http.post("/v1/requests", json=request_body(district_code), headers=bearer(token))


async def submitted_id(http: httpx.AsyncClient, token: str, district_code: str) -> str:
    response = await submit(http, token, district_code)
    assert response.status_code == 202, response.text
    request_id: str = response.json()["request_id"]
    return request_id


@pytest.fixture
async def anonymous(intake_url: str) -> Any:
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        yield client


BAD_AUTHORIZATIONS = {
    "expired": f"Bearer {expired_token()}",
    "tampered": f"Bearer {tampered_token()}",
    "other-secret": f"Bearer {foreign_token()}",
    "garbage": "Bearer not-a-jwt",
    "not-bearer": f"Basic {office_token()}",
}


async def test_no_valid_token_gets_401_with_a_bearer_challenge_everywhere(
    start_services: StartServices, anonymous: httpx.AsyncClient
) -> None:
    await start_services("intake")

    for case, authorization in {"none": None, **BAD_AUTHORIZATIONS}.items():
        headers = {"Authorization": authorization} if authorization else {}
        answers = [
            await anonymous.post("/v1/requests", json=request_body("4701"), headers=headers),
            await anonymous.get(f"/v1/requests/{UNKNOWN_ID}", headers=headers),
            await anonymous.post(f"/v1/requests/{UNKNOWN_ID}/cancel", headers=headers),
        ]
        for response in answers:
            assert response.status_code == 401, (case, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
        if authorization is not None and authorization.startswith("Bearer "):
            assert 'error="invalid_token"' in answers[0].headers["WWW-Authenticate"], case
    expired = await anonymous.get(
        f"/v1/requests/{UNKNOWN_ID}", headers={"Authorization": BAD_AUTHORIZATIONS["expired"]}
    )
    assert "expired" in expired.json()["detail"]


async def test_health_and_the_openapi_document_stay_open_and_declare_the_bearer_scheme(
    start_services: StartServices, anonymous: httpx.AsyncClient
) -> None:
    await start_services("intake")

    assert (await anonymous.get("/healthz")).status_code == 200
    assert (await anonymous.get("/docs")).status_code == 200
    document = (await anonymous.get("/openapi.json")).json()

    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert document["paths"]["/v1/requests"]["post"]["security"] == [{"bearer": []}]
    assert document["paths"]["/v1/requests/{request_id}"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


async def test_an_office_submits_for_its_own_district_and_a_forged_submit_gets_403(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    token = office_token("4701")

    own = await submit(http, token, "4701")
    forged = await submit(http, token, "4702")

    assert own.status_code == 202
    assert forged.status_code == 403
    assert "4702" in forged.json()["detail"]


async def test_an_office_cannot_see_or_cancel_another_offices_request(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    theirs = await submitted_id(http, office_token("4702"), "4702")
    mine = office_token("4701")

    read = await http.get(f"/v1/requests/{theirs}", headers=bearer(mine))
    cancel = await http.post(f"/v1/requests/{theirs}/cancel", headers=bearer(mine))
    missing = await http.get(f"/v1/requests/{UNKNOWN_ID}", headers=bearer(mine))

    assert read.status_code == cancel.status_code == missing.status_code == 404
    assert read.json() == cancel.json() == missing.json()
    owner_view = await http.get(f"/v1/requests/{theirs}", headers=bearer(office_token("4702")))
    assert owner_view.status_code == 200
    assert owner_view.json()["status"] == "submitted"


async def test_an_operator_of_region_12_acts_in_sakon_nakhon_and_not_in_bangkok(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    sakon_nakhon = await submitted_id(http, office_token("4701"), "4701")
    bangkok = await submitted_id(http, office_token("1001"), "1001")
    operator = bearer(operator_token("somsri", region="12"))

    assert (await http.get(f"/v1/requests/{sakon_nakhon}", headers=operator)).status_code == 200
    assert (await http.get(f"/v1/requests/{bangkok}", headers=operator)).status_code == 404
    cancel_bangkok = await http.post(f"/v1/requests/{bangkok}/cancel", headers=operator)
    assert cancel_bangkok.status_code == 404
    cancelled = await http.post(f"/v1/requests/{sakon_nakhon}/cancel", headers=operator)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    bangkok_view = await http.get(f"/v1/requests/{bangkok}", headers=bearer(office_token("1001")))
    assert bangkok_view.json()["status"] == "submitted"

    nakhon_phanom = await http.post("/v1/requests", json=request_body("4801"), headers=operator)
    for_bangkok = await http.post("/v1/requests", json=request_body("1001"), headers=operator)
    assert nakhon_phanom.status_code == 202
    assert for_bangkok.status_code == 403
