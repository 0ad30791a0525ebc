"""``/v1/admin/*`` is for operators: an office token gets 403, no token 401."""

from __future__ import annotations

import httpx
import pytest

from tests.support.auth import bearer, office_token, operator_token
from tests.support.services import StartServices

pytestmark = pytest.mark.integration

ADMIN_CALLS = [
    ("GET", "/v1/admin/dead-letters", None),
    ("POST", "/v1/admin/dead-letters/replay", {"all": True}),
]


async def test_admin_endpoints_refuse_office_tokens_and_serve_operators(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    office = bearer(office_token("4701"))
    operator = bearer(operator_token("somsri", region="12"))

    for method, path, body in ADMIN_CALLS:
        as_office = await http.request(method, path, json=body, headers=office)
        anonymous = await http.request(method, path, json=body, headers={"Authorization": ""})
        as_operator = await http.request(method, path, json=body, headers=operator)

        assert as_office.status_code == 403, path
        assert "operator" in as_office.json()["detail"]
        assert anonymous.status_code == 401, path
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert as_operator.status_code == 200, (path, as_operator.text)

    document = (await http.get("/openapi.json")).json()
    for _, path, _ in ADMIN_CALLS:
        for operation in document["paths"][path].values():
            assert operation["security"] == [{"bearer": []}]
