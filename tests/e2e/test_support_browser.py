"""Support staff in a real browser (headless Chromium): a clerk of office 4701, on a phone, asks
the centre for help without a meeting; a region-12 operator claims the ticket in the console
(who helps, when) and marks it done; the clerk's page shows each state in Thai. Keyboard only
where it matters (the forms are submitted with Enter). Screenshots at 360 and 1280 px land in
``.data/screenshots/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, expect

from tests.e2e.test_clerk_pages import Outside, new_context
from tests.support.browser import DESKTOP, PHONE, screenshot, unlabelled_fields
from tests.support.browser import accept_invite_and_sign_in as sign_in_from_invite
from tests.support.people import invite
from tests.support.services import StartServices

pytestmark = pytest.mark.e2e

TOPIC = "ขอช่วยติดตั้งกล้องและไมโครโฟนห้องประชุมอำเภอ"


@pytest_asyncio.fixture
async def outside() -> Outside:
    return Outside()


@pytest_asyncio.fixture
async def phone(browser: Browser, outside: Outside) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser, outside, PHONE)
    yield context
    await context.close()


@pytest_asyncio.fixture
async def desktop(browser: Browser, outside: Outside) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser, outside, DESKTOP)
    yield context
    await context.close()


async def test_a_clerk_asks_for_staff_and_follows_the_ticket_an_operator_works(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    browser: Browser,
    phone: BrowserContext,
    desktop: BrowserContext,
    outside: Outside,
    tmp_path: Path,
) -> None:
    await start_services("desk", "intake")
    clerk_link = await invite(
        service_env,
        tmp_path,
        email="clerk.s@example.go.th",
        name="สมหญิง รักงาน",
        scope=("--office", "4701"),
    )
    operator_link = await invite(
        service_env,
        tmp_path,
        email="op.s@example.go.th",
        name="สมศักดิ์ ศูนย์สื่อสาร",
        scope=("--operator", "--region", "12"),
    )

    clerk = await phone.new_page()
    clerk.set_default_timeout(30_000)
    await sign_in_from_invite(clerk, clerk_link, "clerk.s@example.go.th")
    await clerk.goto(f"{intake_url}/")
    await clerk.focus("#support-link")
    await clerk.keyboard.press("Enter")
    await clerk.wait_for_url("**/support")
    assert await unlabelled_fields(clerk) == []
    await expect(clerk.locator("#contact_email")).to_have_value("clerk.s@example.go.th")
    await clerk.fill("#topic", TOPIC)
    await clerk.fill("#contact_phone", "042-711361")
    await clerk.press("#contact_phone", "Enter")
    await expect(clerk.locator("#support-asked")).to_be_visible()
    mine = clerk.locator(".support-ticket", has_text=TOPIC)
    await expect(mine.locator(".badge")).to_have_text("รอเจ้าหน้าที่")
    await screenshot(clerk, "support-clerk-asked-360")

    operator = await desktop.new_page()
    operator.set_default_timeout(30_000)
    await sign_in_from_invite(operator, operator_link, "op.s@example.go.th")
    await operator.goto(f"{intake_url}/console/support")
    ticket = operator.locator(".ticket", has_text=TOPIC)
    await expect(ticket).to_contain_text("042-711361")
    await expect(ticket.locator("input[name=helper]")).to_have_value("สมศักดิ์ ศูนย์สื่อสาร")
    await ticket.locator("input[name=visit_date]").fill("3/12/2569")
    await ticket.locator("input[name=visit_time]").fill("08:30")
    await screenshot(operator, "console-support-1280")
    await ticket.locator("button[type=submit]").focus()
    await operator.keyboard.press("Enter")
    await operator.wait_for_url("**/console/support?status=claimed*")
    claimed = operator.locator(".ticket", has_text=TOPIC)
    await expect(claimed.locator(".badge")).to_have_text("เจ้าหน้าที่รับเรื่องแล้ว")
    await expect(claimed).to_contain_text("3 ธ.ค. 2569 08:30")

    await clerk.reload()
    await expect(mine.locator(".badge")).to_have_text("เจ้าหน้าที่รับเรื่องแล้ว")
    await expect(mine).to_contain_text("สมศักดิ์ ศูนย์สื่อสาร จะไปช่วยท่านเมื่อ")
    await screenshot(clerk, "support-clerk-claimed-360")

    await claimed.locator("input[name=note]").fill("ติดตั้งโปรแกรมและทดสอบเสียงแล้ว")
    await claimed.locator("input[name=note]").press("Enter")
    await operator.wait_for_url("**/console/support?status=done*")
    await expect(operator.locator(".ticket", has_text=TOPIC)).to_contain_text(
        "ติดตั้งโปรแกรมและทดสอบเสียงแล้ว"
    )
    await screenshot(operator, "console-support-done-1280")

    await clerk.reload()
    await expect(mine.locator(".badge")).to_have_text("เสร็จแล้ว")
    await screenshot(clerk, "support-clerk-done-360")

    for context, viewport, path, name in (
        (desktop, PHONE, "/console/support?status=done", "console-support-360"),
        (phone, DESKTOP, "/support", "support-clerk-1280"),
    ):
        other = await browser.new_context(
            viewport=viewport, locale="th-TH", storage_state=await context.storage_state()
        )
        page = await other.new_page()
        await page.goto(intake_url + path)
        await expect(page.locator("h1")).to_be_visible()
        await screenshot(page, name)
        await other.close()
    assert outside.requests == []
