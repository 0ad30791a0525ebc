"""People for tests of the pages: invited with ``vcs user add`` (as an operator would), then
signed in over HTTP with the pages' own forms (CSRF token included)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.support.cli import last_line, vcs

PASSWORD = "correct horse battery staple"
_CSRF_FIELD = re.compile(r'name="csrftoken" value="([^"]+)"')


async def invite(
    service_env: dict[str, str], cwd: Path, *, email: str, name: str, scope: tuple[str, ...]
) -> str:
    """``vcs user add``'s invite link for a new person (``scope``: ``("--office", "4701")``,
    ``("--operator", "--region", "12")`` ...)."""
    result = await vcs(
        "user",
        "add",
        "--email",
        email,
        "--name",
        name,
        *scope,
        cwd=cwd,
        VCS_MONGODB_URL=service_env["VCS_MONGODB_URL"],
        VCS_NAMESPACE=service_env["VCS_NAMESPACE"],
        VCS_PUBLIC_URL=f"http://127.0.0.1:{service_env['VCS_PORT']}",
    )
    return last_line(result)


def csrf_field(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, fields: dict[str, str]
) -> httpx.Response:
    """Opens the page (for its CSRF token and cookie) and posts its form like a browser."""
    opened = await client.get(page)
    return await client.post(action, data={"csrftoken": csrf_field(opened.text), **fields})


async def set_password(client: httpx.AsyncClient, invite_url: str, password: str) -> httpx.Response:
    path = httpx.URL(invite_url).path
    return await post_form(client, path, path, {"password": password, "password_confirm": password})


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await post_form(client, "/signin", "/signin", {"email": email, "password": password})


@asynccontextmanager
async def signed_in_client(
    service_env: dict[str, str], cwd: Path, intake_url: str, *, email: str, scope: tuple[str, ...]
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of a person who accepted their invite and signed in."""
    link = await invite(service_env, cwd, email=email, name="ทดสอบ ระบบ", scope=scope)
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        assert (await set_password(client, link, PASSWORD)).status_code == 303
        assert (await sign_in(client, email, PASSWORD)).status_code == 303
        yield client
