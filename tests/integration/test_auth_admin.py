"""``/v1/admin/*`` is for operators: an office token gets 403, no token 401, on the intake's
address and again on every internal API behind it."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

from tests.support.auth import bearer, codec, office_token, operator_token
from tests.support.services import StartServices
from vcs_allocator.admin import create_admin_app
from vcs_desk.api import create_app as create_desk_app
from vcs_shared.auth import InternalAuthenticator

pytestmark = pytest.mark.integration

ADMIN_CALLS = [
    ("GET", "/v1/admin/dead-letters", None),
    ("POST", "/v1/admin/dead-letters/replay", {"all": True}),
    ("GET", "/v1/admin/pools", None),
    ("GET", "/v1/admin/pools/export", None),
    ("GET", "/v1/admin/reservations", None),
]


async def test_admin_endpoints_refuse_office_tokens_and_serve_operators(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("allocator", "desk", "intake")
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


def test_every_internal_admin_operation_declares_the_bearer_scheme() -> None:
    """Each owner documents its own admin API (the intake forwards it unchanged)."""
    authenticator = InternalAuthenticator(codec)
    none: Any = None
    documents = [
        create_admin_app(none, authenticator, none, none, none).openapi(),
        create_desk_app(cast(Any, None), authenticator, cast(Any, None)).openapi(),
    ]
    paths = {path: ops for document in documents for path, ops in document["paths"].items()}
    for _, path, _ in ADMIN_CALLS:
        for operation in paths[path].values():
            assert operation["security"] == [{"bearer": []}], path
