"""People sign in: ``vcs user add`` invites, the invite page sets the password, ``/signin``
starts a cookie session that is the same principal as a token, sign-out ends it; every form
needs its CSRF token; repeated wrong passwords lock the account."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.cli import vcs
from tests.support.people import (
    PASSWORD,
    csrf_field,
    invite,
    post_form,
    set_password,
    sign_in,
    signed_in_client,
)
from tests.support.requests import request_body
from tests.support.services import StartServices

pytestmark = pytest.mark.integration


async def test_an_invited_clerk_sets_a_password_signs_in_and_out(
    start_services: StartServices, service_env: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    await start_services("intake")
    link = await invite(
        service_env,
        tmp_path,
        email="Clerk@Example.go.th",
        name="สมศรี ใจดี",
        scope=("--office", "4701"),
    )
    assert link.startswith(f"{intake_url}/invite/")

    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as browser:
        page = await browser.get(httpx.URL(link).path)
        assert page.status_code == 200
        assert "สมศรี ใจดี" in page.text
        assert "clerk@example.go.th" in page.text
        mismatch = await post_form(
            browser,
            httpx.URL(link).path,
            httpx.URL(link).path,
            {"password": PASSWORD, "password_confirm": PASSWORD + "x"},
        )
        assert mismatch.status_code == 422
        assert "รหัสผ่านทั้งสองช่องไม่ตรงกัน" in mismatch.text

        accepted = await set_password(browser, link, PASSWORD)
        assert accepted.status_code == 303
        path = httpx.URL(link).path
        assert (await browser.get(path)).status_code == 404  # once only
        fields = {"password": "another password", "password_confirm": "another password"}
        reused = await browser.post(
            path, data={"csrftoken": browser.cookies["csrftoken"], **fields}
        )
        assert reused.status_code == 404

        signed = await sign_in(browser, "clerk@example.go.th", PASSWORD)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "vcs_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on this machine
        home = await browser.get("/")
        assert "ที่ทำการปกครองอำเภอเมืองสกลนคร" in home.text
        assert "คำขอของหน่วยงาน" in home.text

        english = await browser.get("/language?to=en&next=/", follow_redirects=True)
        assert "<h1>Your office" in english.text
        assert "Mueang Sakon Nakhon (4701)" in english.text
        assert 'lang="en"' in english.text
        thai = await browser.get("/language?to=th&next=//evil.example", follow_redirects=False)
        assert thai.headers["location"] == "/"  # only this site's paths

        out = await post_form(browser, "/", "/signout", {})
        assert out.status_code == 303
        assert "vcs_session" not in browser.cookies
        after = await browser.get("/requests/new")
        assert after.status_code == 303
        assert after.headers["location"].startswith("/signin")


async def test_the_ended_session_is_refused_even_with_the_old_cookie(
    start_services: StartServices, service_env: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    await start_services("intake")
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="a@example.go.th", scope=("--office", "4701")
    ) as browser:
        old_cookie = browser.cookies["vcs_session"]
        assert (await browser.get("/requests/new")).status_code == 200
        await post_form(browser, "/", "/signout", {})
        async with httpx.AsyncClient(base_url=intake_url, timeout=30) as replay:
            replay.cookies.set("vcs_session", old_cookie)
            assert (await replay.get("/requests/new")).status_code == 303


async def test_every_form_needs_its_csrf_token(
    start_services: StartServices, service_env: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    await start_services("intake")
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="b@example.go.th", scope=("--office", "4701")
    ) as browser:
        form = await browser.get("/requests/new")
        fields = {"title": "x", "idempotency_key": "k1"}
        forged = await browser.post("/requests/new", data=fields)
        wrong = await browser.post("/requests/new", data={**fields, "csrftoken": "forged"})
        signout = await browser.post("/signout", data={})
        assert forged.status_code == wrong.status_code == signout.status_code == 403
        assert "แบบฟอร์มหมดอายุ" in forged.text
        assert csrf_field(form.text)
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as stranger:
        # Login CSRF: the sign-in form is checked even from a browser with no cookies yet.
        login = await stranger.post(
            "/signin", data={"email": "b@example.go.th", "password": PASSWORD}
        )
        assert login.status_code == 403


async def test_repeated_wrong_passwords_lock_the_account_for_a_while(
    start_services: StartServices, service_env: dict[str, str], intake_url: str, tmp_path: Path
) -> None:
    await start_services("intake")
    link = await invite(
        service_env, tmp_path, email="c@example.go.th", name="ค", scope=("--office", "4701")
    )
    async with httpx.AsyncClient(base_url=intake_url, timeout=60) as browser:
        await set_password(browser, link, PASSWORD)
        answers = [
            (await sign_in(browser, "c@example.go.th", "wrong password!")).status_code
            for _ in range(6)
        ]
        right_but_locked = await sign_in(browser, "c@example.go.th", PASSWORD)
        unknown = await sign_in(browser, "nobody@example.go.th", PASSWORD)

    assert answers == [401, 401, 401, 401, 401, 429]
    assert right_but_locked.status_code == 429
    assert "ถูกระงับชั่วคราว" in right_but_locked.text
    assert "vcs_session" not in right_but_locked.headers.get("set-cookie", "")
    assert unknown.status_code == 401


async def test_a_signed_in_person_has_the_rights_of_the_matching_token(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    await start_services("intake")
    own = (await http.post("/v1/requests", json=request_body("4701"))).json()["request_id"]
    other = (await http.post("/v1/requests", json=request_body("4702"))).json()["request_id"]
    bangkok = (await http.post("/v1/requests", json=request_body("1001"))).json()["request_id"]
    people = (
        ("clerk", "d@example.go.th", ("--office", "4701")),
        ("operator", "e@example.go.th", ("--operator", "--region", "12")),
        ("national", "f@example.go.th", ("--operator", "--national")),
    )
    seen: dict[str, list[int]] = {}
    for name, email, scope in people:
        async with signed_in_client(
            service_env, tmp_path, intake_url, email=email, scope=scope
        ) as browser:
            seen[name] = [
                (await browser.get(f"/requests/{rid}")).status_code for rid in (own, other, bangkok)
            ]
    assert seen == {
        "clerk": [200, 404, 404],
        "operator": [200, 200, 404],
        "national": [200, 200, 200],
    }


async def test_user_add_refuses_a_bad_scope_and_a_second_account_for_one_address(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        "VCS_MONGODB_URL": service_env["VCS_MONGODB_URL"],
        "VCS_NAMESPACE": service_env["VCS_NAMESPACE"],
    }
    base = ("user", "add", "--email", "g@example.go.th", "--name", "ก")
    unknown = await vcs(*base, "--office", "9999", cwd=tmp_path, **env)
    nowhere = await vcs(*base, "--operator", cwd=tmp_path, **env)
    first = await vcs(*base, "--office", "4701", cwd=tmp_path, **env)
    second = await vcs(*base, "--office", "4702", cwd=tmp_path, **env)
    again = await vcs("user", "invite", "--email", "G@example.go.th", cwd=tmp_path, **env)

    assert [r.returncode for r in (unknown, nowhere)] == [2, 2]
    assert "unknown district" in unknown.stderr
    assert first.returncode == 0
    assert "/invite/" in first.stdout.splitlines()[-1]
    assert second.returncode == 2
    assert "already has an account" in second.stderr
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] != first.stdout.splitlines()[-1]
