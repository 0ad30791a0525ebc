"""Single sign-on in a real browser (headless Chromium): a region-12 operator opens the console,
is sent to the sign-in page, presses the single sign-on button, answers the local provider's
own page (``oidc-provider-mock``) and lands back on the console signed in; a person who cancels
at the provider is back on the sign-in page with the reason in Thai. Screenshots of the sign-in
page at 1280 px and 360 px in ``.data/screenshots/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.support.browser import DESKTOP, PHONE, cut_off, sarabun_renders_thai, screenshot
from tests.support.people import invite
from tests.support.services import StartServices
from tests.support.single_sign_on import at_provider, provider, sso_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]

__all__ = ["provider"]  # the provider fixture (tests/support/single_sign_on.py)

OPERATOR = "sso.browser@example.go.th"


async def test_an_operator_signs_in_with_the_single_sign_on_button(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    provider: str,
    browser: Browser,
    tmp_path: Path,
) -> None:
    await start_services("intake", extra_env=sso_env(provider, intake_url))
    await invite(
        service_env,
        tmp_path,
        email=OPERATOR,
        name="ทดสอบ ระบบ",
        scope=("--operator", "--region", "12"),
    )
    await at_provider(provider, OPERATOR, email_verified=True)

    context = await browser.new_context(viewport=DESKTOP, locale="th-TH")
    try:
        page = await context.new_page()
        await page.goto(f"{intake_url}/console")
        assert "/signin?next=" in page.url, page.url
        await screenshot(page, "signin-single-sign-on-1280")
        await page.click("#single-sign-on")
        await page.wait_for_url(f"{provider}/oauth2/authorize*")
        await page.fill("input[name=sub]", OPERATOR)
        await page.click("button:has-text('Authorize')")
        await page.wait_for_url(f"{intake_url}/console")
        await expect(page.locator("h1")).to_have_text("ความเคลื่อนไหวสด")  # the live feed

        cancelled = await context.new_page()
        await context.clear_cookies()
        await cancelled.goto(f"{intake_url}/signin")
        await cancelled.click("#single-sign-on")
        await cancelled.wait_for_url(f"{provider}/oauth2/authorize*")
        await cancelled.click("button[value=deny]")
        await cancelled.wait_for_url(f"{intake_url}/signin/oidc/callback*")
        await expect(cancelled.locator("body")).to_contain_text("ยกเลิก")
        await expect(cancelled.locator("#single-sign-on")).to_be_visible()
    finally:
        await context.close()

    # The same sign-in page on a phone: the button fits, the Thai is drawn in Sarabun.
    phone = await browser.new_context(viewport=PHONE, locale="th-TH")
    try:
        page = await phone.new_page()
        await page.goto(f"{intake_url}/signin")
        await expect(page.locator("#single-sign-on")).to_be_visible()
        assert await sarabun_renders_thai(page)
        await screenshot(page, "signin-single-sign-on-360")
        assert await cut_off(page) == []
    finally:
        await phone.close()
