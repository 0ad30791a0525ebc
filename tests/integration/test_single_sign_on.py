"""Signing in through an OpenID Connect provider (the department's single sign-on, ThaID),
against a real local provider (``oidc-provider-mock``, a Flask server speaking OIDC on a
port of its own): the account of the verified e-mail is signed in with its own office or
region; an unverified or unknown e-mail and a refusal at the provider return to the sign-in
page with the reason; every attempt is audited as a single sign-on; without the settings
there is neither button nor route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.people import invite
from tests.support.services import StartServices
from tests.support.single_sign_on import at_provider, provider, sso_env
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_shared.topology import Topology

pytestmark = [
    pytest.mark.integration,
    # the provider itself (Authlib inside oidc-provider-mock) warns about its own use of Authlib
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]

__all__ = ["provider"]  # the provider fixture (tests/support/single_sign_on.py)


async def through_provider(
    browser: httpx.AsyncClient, sub: str, *, action: str | None = None
) -> httpx.Response:
    """Clicks the sign-on button, answers the provider's page as ``sub`` (or denies), and
    follows the provider back to the intake: the intake's last answer."""
    signin = await browser.get("/signin")
    assert 'id="single-sign-on"' in signin.text
    started = await browser.get("/signin/oidc", params={"next": "/"})
    assert started.status_code in (302, 303, 307), started.text
    authorize = started.headers["location"]
    async with httpx.AsyncClient(timeout=10) as person_at_provider:
        form = await person_at_provider.get(authorize)
        assert form.status_code == 200
        fields = {"action": action} if action else {"sub": sub}
        answered = await person_at_provider.post(authorize, data=fields)
    assert answered.status_code in (302, 303), answered.text
    back = httpx.URL(answered.headers["location"])
    return await browser.get(back.raw_path.decode())


async def test_people_sign_in_through_the_provider_with_their_own_rights(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    provider: str,
    broker: Any,
    topology: Topology,
    tmp_path: Path,
) -> None:
    audit = await EventTap.bind(broker, topology.audit_exchange, "#")
    await start_services("intake", extra_env=sso_env(provider, intake_url))
    clerk, operator = "sso.clerk@example.go.th", "sso.operator@example.go.th"
    people = ((clerk, ("--office", "4701")), (operator, ("--operator", "--region", "12")))
    for email, scope in people:
        await invite(service_env, tmp_path, email=email, name="ทดสอบ ระบบ", scope=scope)
    # The provider keeps its own spelling of the address: matched case-insensitively.
    await at_provider(provider, "SSO.Clerk@Example.go.th", email_verified=True)
    await at_provider(provider, operator, email_verified=True)
    await at_provider(provider, "nobody@example.go.th", email_verified=True)
    await at_provider(provider, "unverified@example.go.th", email_verified=False)

    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as browser:
        signed = await through_provider(browser, "SSO.Clerk@Example.go.th")
        assert signed.status_code == 303, signed.text
        assert "vcs_session=" in signed.headers["set-cookie"]
        home = await browser.get("/")
        assert "ที่ทำการปกครองอำเภอเมืองสกลนคร" in home.text  # the clerk's own office
        assert (await browser.get("/console", follow_redirects=False)).status_code != 200

    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as browser:
        signed = await through_provider(browser, operator)
        assert signed.status_code == 303, signed.text
        console = await browser.get("/console")
        assert console.status_code == 200  # an operator of region 12, as invited

    refusals = {
        "nobody@example.go.th": "ไม่มีบัญชี",
        "unverified@example.go.th": "ยังไม่ได้ยืนยันอีเมล",
    }
    for sub, reason in refusals.items():
        async with httpx.AsyncClient(base_url=intake_url, timeout=30) as browser:
            refused = await through_provider(browser, sub)
            assert refused.status_code == 401
            assert reason in refused.text
            assert "vcs_session" not in browser.cookies

    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as browser:
        denied = await through_provider(browser, "", action="deny")
        assert denied.status_code == 401
        assert "ยกเลิก" in denied.text
        assert "vcs_session" not in browser.cookies

        forged = await browser.get("/signin/oidc/callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 401  # a state this browser never started: refused

    def sso_sign_ins() -> list[dict[str, Any]]:
        entries = [m.cloudevent["data"] for m in audit.with_prefix("")]
        return [
            e
            for e in entries
            if e["action"] == "sign_in" and "single sign-on" in (e.get("detail") or "")
        ]

    async def all_audited() -> list[dict[str, Any]] | None:
        found = sso_sign_ins()
        return found if len(found) == 4 else None

    entries = await eventually(all_audited, what="four single sign-ons audited")
    outcomes = sorted((e["target"]["id"], e["after"]) for e in entries)
    assert outcomes == [
        ("nobody@example.go.th", "unknown_email"),
        ("sso.clerk@example.go.th", "signed_in"),
        ("sso.operator@example.go.th", "signed_in"),
        ("unverified@example.go.th", "unverified_email"),
    ]


async def test_without_a_provider_there_is_no_button_and_no_route(
    start_services: StartServices, intake_url: str
) -> None:
    await start_services("intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as browser:
        signin = await browser.get("/signin")
        assert signin.status_code == 200
        assert "single-sign-on" not in signin.text
        assert (await browser.get("/signin/oidc")).status_code == 404
        assert (await browser.get("/signin/oidc/callback")).status_code == 404
